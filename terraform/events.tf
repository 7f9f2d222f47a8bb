# Events rule: every create, update (overwrite) and delete of an object in the images bucket
# invokes the function with the CloudEvents envelope as its body. Requires
# object_events_enabled = true on the bucket (storage.tf) and the cloudEvents policy (iam.tf).
# Created in phase 2 only, together with the function.

resource "oci_events_rule" "image_events" {
  count = var.use_placeholder_images ? 0 : 1

  compartment_id = var.compartment_ocid
  display_name   = "${var.project_name}-image-events"
  description    = "Object create/update/delete in ${var.bucket_name} -> image-analyzer function"
  is_enabled     = true
  freeform_tags  = var.freeform_tags

  condition = jsonencode({
    eventType = [
      "com.oraclecloud.objectstorage.createobject",
      "com.oraclecloud.objectstorage.updateobject",
      "com.oraclecloud.objectstorage.deleteobject",
    ]
    # Only uploads start an analysis: the web app's thumbnails and previews (thumbs/,
    # previews/) never match. Conditions under `data` match the event payload, and `*` is a
    # wildcard (docs: Events, "Matching Events with Filters"); func/ ignores those prefixes too.
    data = {
      resourceName = ["uploads/*"]
      additionalDetails = {
        bucketName = [oci_objectstorage_bucket.images.name]
      }
    }
  })

  actions {
    action {
      action_type = "FAAS"
      is_enabled  = true
      function_id = oci_functions_function.image_analyzer[0].id
      description = "analyse the image and upsert its SODA document"
    }
  }
}
