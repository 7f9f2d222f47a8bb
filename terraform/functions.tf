# The Functions application (x86, in the private subnet) and the image-analyzer function. The
# function exists only once real images are in use (phase 2): OCI Functions runs images from OCIR
# in the same region only, so there is no public placeholder for it.

resource "oci_functions_application" "app" {
  compartment_id = var.compartment_ocid
  display_name   = "${var.project_name}-app"
  subnet_ids     = [oci_core_subnet.private.id]
  shape          = "GENERIC_X86" # the func image is linux/amd64
  freeform_tags  = var.freeform_tags
}

locals {
  # Function configuration = environment variables (at most 4 KB in total). Only the secret's
  # OCID, never the password.
  func_config = merge({
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
    VISION_MAX_RESULTS      = tostring(var.vision_max_results)
    VISION_TEXT             = var.vision_text ? "on" : "off"
    # Unset, the function takes the region's default Vision limit (10 or 5 per second).
    }, var.vision_tps > 0 ? { VISION_TPS = tostring(var.vision_tps) } : {},
    # Where ORDS ignores write conditions (webapp doctor): each instance paces itself at its share.
    var.ords_conditional_writes ? {} : {
      ORDS_CONDITIONAL_WRITES = "off"
      FUNCTION_MAX_INSTANCES  = tostring(var.function_max_instances)
  })
}

resource "oci_functions_function" "image_analyzer" {
  count = var.use_placeholder_images ? 0 : 1

  application_id     = oci_functions_application.app.id
  display_name       = "image-analyzer"
  image              = local.func_image
  memory_in_mbs      = var.function_memory_mb
  timeout_in_seconds = var.function_timeout_seconds
  config             = local.func_config
  freeform_tags      = var.freeform_tags

  lifecycle {
    precondition {
      condition     = var.func_image_tag != ""
      error_message = "func_image_tag is empty: push the func image (terraform output build_commands) and pass its tag, or keep use_placeholder_images = true."
    }
  }
}
