# Function logs: OCI Functions sends a function's stdout/stderr nowhere until a service log is
# enabled for its application (category "invoke"). The container instance needs nothing here:
# its container logs are read with `oci container-instances container retrieve-logs`.

resource "oci_logging_log_group" "ocivision" {
  compartment_id = var.compartment_ocid
  display_name   = "${var.project_name}-logs"
  description    = "ocivision function invocation logs"
  freeform_tags  = var.freeform_tags
}

resource "oci_logging_log" "function_invoke" {
  display_name       = "${var.project_name}-function-invoke"
  log_group_id       = oci_logging_log_group.ocivision.id
  log_type           = "SERVICE"
  is_enabled         = true
  retention_duration = var.function_log_retention_days
  freeform_tags      = var.freeform_tags

  configuration {
    compartment_id = var.compartment_ocid

    source {
      source_type = "OCISERVICE"
      service     = "functions"
      resource    = oci_functions_application.app.id
      category    = "invoke"
    }
  }
}
