# Offline plans of the whole stack against the provider's real schema, with a mocked provider
# (no OCI account, no network): `terraform init -backend=false && terraform test` in terraform/.
# Data sources get fixed answers below; every other computed value is made up by Terraform.

mock_provider "oci" {
  # The values below are used while planning, not only on apply.
  override_during = plan

  mock_data "oci_identity_availability_domains" {
    defaults = {
      availability_domains = [
        { name = "Uocm:EU-FRANKFURT-1-AD-1", compartment_id = "ocid1.tenancy.oc1..test", id = "ad1" },
        { name = "Uocm:EU-FRANKFURT-1-AD-2", compartment_id = "ocid1.tenancy.oc1..test", id = "ad2" },
        { name = "Uocm:EU-FRANKFURT-1-AD-3", compartment_id = "ocid1.tenancy.oc1..test", id = "ad3" },
      ]
    }
  }

  mock_data "oci_core_services" {
    defaults = {
      services = [
        { id = "ocid1.service.oc1..all", cidr_block = "all-fra-services-in-oracle-services-network", description = "All FRA Services In Oracle Services Network", name = "All FRA Services In Oracle Services Network" },
      ]
    }
  }

  mock_data "oci_identity_regions" {
    defaults = {
      regions = [
        { key = "FRA", name = "eu-frankfurt-1" },
        { key = "IAD", name = "us-ashburn-1" },
      ]
    }
  }

  mock_data "oci_objectstorage_namespace" {
    defaults = {
      namespace = "testnamespace"
    }
  }

  mock_data "oci_database_autonomous_db_versions" {
    defaults = {
      autonomous_db_versions = [
        { version = "19c", db_workload = "AJD" },
        { version = "23ai", db_workload = "AJD" },
        { version = "26ai", db_workload = "AJD" },
      ]
    }
  }

  mock_resource "oci_load_balancer_load_balancer" {
    defaults = {
      ip_address_details = [{ ip_address = "203.0.113.10", is_public = true, reserved_ip = [] }]
    }
  }
}

variables {
  tenancy_ocid     = "ocid1.tenancy.oc1..test"
  compartment_ocid = "ocid1.compartment.oc1..test"
  region           = "eu-frankfurt-1"
}

run "defaults_one_instance_reconciler_on_session_secret_from_vault" {
  command = plan

  assert {
    condition     = length(oci_container_instances_container_instance.webapp) == 1 && length(oci_load_balancer_backend.webapp) == 1
    error_message = "the default is one web-app instance and one backend"
  }

  assert {
    condition     = local.webapp_env.RECONCILE_INTERVAL_SECS == "600"
    error_message = "the reconciler must be on by default (600 s)"
  }

  assert {
    condition     = local.webapp_env.TRUSTED_PROXIES == var.public_subnet_cidr
    error_message = "X-Forwarded-For is believed from the load balancer's subnet only"
  }

  assert {
    condition     = contains(keys(local.webapp_env), "SESSION_SECRET_OCID") && !contains(keys(local.webapp_env), "SESSION_SECRET")
    error_message = "the session secret comes from the Vault, never as a value"
  }

  assert {
    condition     = oci_vault_secret.session_secret.enable_auto_generation
    error_message = "Vault generates the session secret"
  }

  assert {
    condition     = local.webapp_env.PUBLIC_ORIGIN == "http://203.0.113.10"
    error_message = "without a certificate the origin is the load balancer's address over http"
  }

  assert {
    condition     = length(oci_events_rule.image_events) == 0
    error_message = "phase 1 has no events rule"
  }
}

run "three_instances_are_three_backends_spread_over_domains" {
  command = plan

  variables {
    webapp_instance_count = 3
  }

  assert {
    condition     = length(oci_container_instances_container_instance.webapp) == 3
    error_message = "three container instances"
  }

  assert {
    condition     = length(oci_load_balancer_backend.webapp) == 3
    error_message = "three load-balancer backends"
  }

  assert {
    condition     = length(distinct([for b in oci_load_balancer_backend.webapp : b.ip_address])) == 3
    error_message = "each backend is a different instance's address"
  }

  assert {
    condition     = toset([for b in oci_load_balancer_backend.webapp : b.ip_address]) == toset([for c in oci_container_instances_container_instance.webapp : c.vnics[0].private_ip])
    error_message = "the backends are exactly the instances' private IPs"
  }

  assert {
    condition     = length(distinct([for c in oci_container_instances_container_instance.webapp : c.availability_domain])) == 3
    error_message = "three instances in a three-AD region use all three availability domains"
  }

  assert {
    condition     = length(distinct([for c in oci_container_instances_container_instance.webapp : c.vnics[0].hostname_label])) == 3
    error_message = "hostnames are unique in the subnet"
  }
}

run "one_availability_domain_spreads_over_fault_domains" {
  command = plan

  variables {
    webapp_instance_count = 3
  }

  override_data {
    target = data.oci_identity_availability_domains.ads
    values = {
      availability_domains = [{ name = "Uocm:CA-TORONTO-1-AD-1", compartment_id = "ocid1.tenancy.oc1..test", id = "ad1" }]
    }
  }

  assert {
    condition     = toset([for c in oci_container_instances_container_instance.webapp : c.fault_domain]) == toset(["FAULT-DOMAIN-1", "FAULT-DOMAIN-2", "FAULT-DOMAIN-3"])
    error_message = "one AD: the three instances sit in three fault domains"
  }
}

run "placeholder_listens_on_app_port" {
  command = plan

  variables {
    app_port = 8080
  }

  assert {
    condition     = contains(oci_container_instances_container_instance.webapp[0].containers[0].arguments, "-listen=:8080")
    error_message = "the placeholder must listen on app_port"
  }

  assert {
    condition     = oci_load_balancer_backend.webapp[0].port == 8080 && oci_container_instances_container_instance.webapp[0].containers[0].health_checks[0].port == 8080
    error_message = "backend and health check follow app_port"
  }
}

run "phase_two_uses_action_blocks" {
  command = plan

  variables {
    use_placeholder_images = false
    webapp_image_tag       = "3f9c2a1b7d4e"
    func_image_tag         = "3f9c2a1b7d4e"
  }

  assert {
    condition     = length(oci_events_rule.image_events) == 1 && length(oci_events_rule.image_events[0].actions[0].action) == 1
    error_message = "the events rule has one action (the non-deprecated block)"
  }

  assert {
    condition     = oci_container_instances_container_instance.webapp[0].containers[0].image_url == "fra.ocir.io/testnamespace/ocivision/webapp:3f9c2a1b7d4e"
    error_message = "phase 2 runs the pushed webapp image"
  }
}

run "a_certificate_needs_a_public_origin" {
  command = plan

  variables {
    lb_certificate_id = "ocid1.certificate.oc1.eu-frankfurt-1.test"
  }

  expect_failures = [oci_load_balancer_listener.https]
}

run "a_certificate_with_its_dns_origin" {
  command = plan

  variables {
    lb_certificate_id = "ocid1.certificate.oc1.eu-frankfurt-1.test"
    public_origin     = "https://images.example.com"
  }

  assert {
    condition     = local.webapp_env.PUBLIC_ORIGIN == "https://images.example.com" && length(oci_load_balancer_listener.https) == 1
    error_message = "the configured origin is passed on and the HTTPS listener exists"
  }
}

run "an_origin_with_a_path_is_refused" {
  command = plan

  variables {
    public_origin = "https://images.example.com/app/"
  }

  expect_failures = [var.public_origin]
}

run "a_db_version_not_offered_is_refused_with_the_offered_ones" {
  command = plan

  variables {
    db_version = "21c"
  }

  expect_failures = [oci_database_autonomous_database.adb]
}

run "ords_ignoring_conditions_switches_the_fallbacks_on" {
  command = plan

  variables {
    ords_conditional_writes  = false
    webapp_instance_count    = 2
    use_placeholder_images   = false
    webapp_image_tag         = "t1"
    func_image_tag           = "t1"
    vision_broad_object_read = true
  }

  assert {
    condition     = local.webapp_env.ORDS_CONDITIONAL_WRITES == "off"
    error_message = "the web app is told that ORDS ignores conditions"
  }

  assert {
    condition     = oci_functions_function.image_analyzer[0].config.ORDS_CONDITIONAL_WRITES == "off" && oci_functions_function.image_analyzer[0].config.FUNCTION_MAX_INSTANCES == "20"
    error_message = "the function paces per instance at its share"
  }

  assert {
    condition     = [for c in oci_container_instances_container_instance.webapp : c.containers[0].environment_variables.RECONCILER_DESIGNATED] == ["true", "false"]
    error_message = "only instance 0 reconciles"
  }

  assert {
    condition     = length(local.vision_read_statements) == 1 && local.vision_read_statements[0] == "Allow dynamic-group ${local.dg_fn_name} to read objects in compartment id ocid1.compartment.oc1..test"
    error_message = "the broader object read for Vision is granted"
  }
}
