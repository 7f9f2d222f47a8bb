# The web app: webapp_instance_count Container Instances in the private subnet, each at a fixed
# private IP (one load-balancer backend each), spread over availability domains and, within one,
# over fault domains; running the webapp image (or the phase-1 placeholder). Resource principal
# v2.2 is on (is_resource_principal_disabled = false): the platform sets OCI_RESOURCE_PRINCIPAL_*.
# Container instances are not updated in place: any change here replaces the instances.
#
# What the instances share: sessions and form tokens (keys from the Vault session secret), and the
# reconciler (each runs it every reconcile_interval_seconds, but a lease document in the database
# lets one pass run at a time and skips rounds another instance has just done). What they do not:
# login-throttle counts (per process, so an address gets up to N times the attempts) and the
# upload gate (per instance).

data "oci_identity_availability_domains" "ads" {
  compartment_id = var.tenancy_ocid
}

# Bump var.webapp_restart_token to replace the container instance on purpose (e.g. after rotating
# a secret the web app reads at start-up).
resource "terraform_data" "webapp_restart" {
  triggers_replace = var.webapp_restart_token
}

locals {
  app_private_ips = [for i in range(var.webapp_instance_count) : cidrhost(var.private_subnet_cidr, var.app_private_ip_host + i)]
  lb_ip           = oci_load_balancer_load_balancer.lb.ip_address_details[0].ip_address
  https_enabled   = var.lb_certificate_id != ""
  # With a certificate public_origin is required (precondition on the HTTPS listener): the
  # certificate names a DNS host, and browsers send that host's origin, never the LB's IP.
  public_origin = var.public_origin != "" ? var.public_origin : "http://${local.lb_ip}"

  ads = data.oci_identity_availability_domains.ads.availability_domains
  # Instance i: availability domain (index + i) mod ADs; each round over the ADs moves on to the
  # next fault domain, so single-AD regions still spread over three fault domains.
  webapp_placement = [for i in range(var.webapp_instance_count) : {
    availability_domain = local.ads[(var.availability_domain_index + i) % length(local.ads)].name
    fault_domain        = "FAULT-DOMAIN-${floor((var.availability_domain_index + i) / length(local.ads)) % 3 + 1}"
  }]

  placeholder_arguments = coalesce(var.placeholder_webapp_arguments, [
    "-listen=:${var.app_port}",
    "-text=ocivision placeholder: push the real images, then apply with use_placeholder_images=false",
  ])

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
      SESSION_SECRET_OCID     = oci_vault_secret.session_secret.id
      # Only the load balancer (in the public subnet) reaches the instances (network.tf), and it
      # appends the client's address to X-Forwarded-For: believe that header from there only.
      TRUSTED_PROXIES         = var.public_subnet_cidr
      RECONCILE_INTERVAL_SECS = tostring(var.reconcile_interval_seconds)
    },
    # Where ORDS ignores write conditions the lease cannot keep instances apart: only the
    # instance with RECONCILER_DESIGNATED=true (instance 0, below) reconciles.
    var.ords_conditional_writes ? {} : { ORDS_CONDITIONAL_WRITES = "off" },
    var.create_app_password ? {
      APP_PASSWORD_SECRET_OCID = oci_vault_secret.app_password[0].id
    } : {},
    var.use_placeholder_images ? {} : {
      FUNCTION_ID              = oci_functions_function.image_analyzer[0].id
      FUNCTION_INVOKE_ENDPOINT = oci_functions_function.image_analyzer[0].invoke_endpoint
    },
  )
}

# Before webapp_instance_count existed there was one unnumbered instance: it is instance 0.
moved {
  from = oci_container_instances_container_instance.webapp
  to   = oci_container_instances_container_instance.webapp[0]
}

resource "oci_container_instances_container_instance" "webapp" {
  count = var.webapp_instance_count

  compartment_id                       = var.compartment_ocid
  availability_domain                  = local.webapp_placement[count.index].availability_domain
  fault_domain                         = local.webapp_placement[count.index].fault_domain
  display_name                         = count.index == 0 ? "${var.project_name}-webapp" : "${var.project_name}-webapp-${count.index + 1}"
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
    display_name          = count.index == 0 ? "${var.project_name}-webapp-vnic" : "${var.project_name}-webapp-${count.index + 1}-vnic"
    hostname_label        = count.index == 0 ? "webapp" : "webapp${count.index + 1}"
    private_ip            = local.app_private_ips[count.index]
    is_public_ip_assigned = false
  }

  containers {
    display_name                   = "webapp"
    image_url                      = local.webapp_image
    arguments                      = var.use_placeholder_images ? local.placeholder_arguments : null
    environment_variables          = merge(local.webapp_env, { RECONCILER_DESIGNATED = count.index == 0 ? "true" : "false" })
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
