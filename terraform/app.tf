# The web app: one Container Instance in the private subnet at a fixed private IP (the load
# balancer's backend), running the webapp image (or the phase-1 placeholder). Resource principal
# v2.2 is on (is_resource_principal_disabled = false): the platform sets OCI_RESOURCE_PRINCIPAL_*.
# Container instances are not updated in place: any change here replaces the instance.

data "oci_identity_availability_domains" "ads" {
  compartment_id = var.tenancy_ocid
}

# Bump var.webapp_restart_token to replace the container instance on purpose (e.g. after rotating
# a secret the web app reads at start-up).
resource "terraform_data" "webapp_restart" {
  triggers_replace = var.webapp_restart_token
}

locals {
  app_private_ip = cidrhost(var.private_subnet_cidr, var.app_private_ip_host)
  lb_ip          = oci_load_balancer_load_balancer.lb.ip_address_details[0].ip_address
  https_enabled  = var.lb_certificate_id != ""
  public_origin  = var.public_origin != "" ? var.public_origin : (local.https_enabled ? "https://${local.lb_ip}" : "http://${local.lb_ip}")

  webapp_env = merge(
    {
      PORT                    = tostring(var.app_port)
      BIND                    = "0.0.0.0"
      LOG_LEVEL               = var.log_level
      OCI_REGION              = var.region
      BUCKET_NAME             = oci_objectstorage_bucket.images.name
      OS_NAMESPACE            = local.namespace
      COMPARTMENT_ID          = var.compartment_ocid
      DB_ORDS_BASE_URL        = local.ords_base_url
      DB_SCHEMA               = var.db_schema
      DB_COLLECTION           = var.db_collection
      DB_USERNAME             = var.db_username
      DB_PASSWORD_SECRET_OCID = oci_vault_secret.db_admin_password.id
      PUBLIC_ORIGIN           = local.public_origin
    },
    var.create_app_password ? {
      APP_PASSWORD_SECRET_OCID = oci_vault_secret.app_password[0].id
    } : {},
    var.use_placeholder_images ? {} : {
      FUNCTION_ID              = oci_functions_function.image_analyzer[0].id
      FUNCTION_INVOKE_ENDPOINT = oci_functions_function.image_analyzer[0].invoke_endpoint
    },
  )
}

resource "oci_container_instances_container_instance" "webapp" {
  compartment_id                       = var.compartment_ocid
  availability_domain                  = data.oci_identity_availability_domains.ads.availability_domains[var.availability_domain_index].name
  display_name                         = "${var.project_name}-webapp"
  shape                                = var.container_instance_shape
  container_restart_policy             = "ALWAYS"
  graceful_shutdown_timeout_in_seconds = 10
  freeform_tags                        = var.freeform_tags

  shape_config {
    ocpus         = var.app_ocpus
    memory_in_gbs = var.app_memory_gbs
  }

  vnics {
    subnet_id             = oci_core_subnet.private.id
    display_name          = "${var.project_name}-webapp-vnic"
    hostname_label        = "webapp"
    private_ip            = local.app_private_ip
    is_public_ip_assigned = false
  }

  containers {
    display_name                   = "webapp"
    image_url                      = local.webapp_image
    arguments                      = var.use_placeholder_images ? var.placeholder_webapp_arguments : null
    environment_variables          = local.webapp_env
    is_resource_principal_disabled = false

    health_checks {
      name                     = "healthz"
      health_check_type        = "HTTP"
      path                     = "/healthz"
      port                     = var.app_port
      initial_delay_in_seconds = 5
      interval_in_seconds      = 15
      timeout_in_seconds       = 5
      failure_threshold        = 4
      success_threshold        = 1
      failure_action           = "KILL"
    }
  }

  lifecycle {
    replace_triggered_by = [terraform_data.webapp_restart]

    precondition {
      condition     = var.use_placeholder_images || var.webapp_image_tag != ""
      error_message = "webapp_image_tag is empty: push the webapp image (terraform output build_commands) and pass its tag, or keep use_placeholder_images = true."
    }
  }
}
