# The images bucket: private, with object events on (without them the Events rule never fires).

data "oci_objectstorage_namespace" "this" {
  compartment_id = var.tenancy_ocid
}

resource "oci_objectstorage_bucket" "images" {
  compartment_id        = var.compartment_ocid
  namespace             = data.oci_objectstorage_namespace.this.namespace
  name                  = var.bucket_name
  access_type           = "NoPublicAccess"
  storage_tier          = "Standard"
  object_events_enabled = true
  versioning            = "Disabled"
  freeform_tags         = var.freeform_tags
}
