# IAM: one dynamic group per runtime and one policy in the stack's compartment. With
# create_iam = false nothing is created; `terraform output iam_statements` prints the matching
# rules and statements for an administrator to create by hand (names and OCIDs filled in).
#
# Resource principals: Functions run as resource.type 'fnfunc', Container Instances as
# 'computecontainerinstance' (a wrong type here is the usual cause of 404 NotAuthorizedOrNotFound
# from Vision or Object Storage). Policy changes can take a few minutes (functions cache their
# resource-principal token up to 15 minutes).

locals {
  compartment_scope = "compartment id ${var.compartment_ocid}"

  dg_app_name = "${var.project_name}-webapp-dg"
  dg_fn_name  = "${var.project_name}-func-dg"

  dg_app_rule = "ALL {resource.type = 'computecontainerinstance', resource.compartment.id = '${var.compartment_ocid}'}"
  dg_fn_rule  = "ALL {resource.type = 'fnfunc', resource.compartment.id = '${var.compartment_ocid}'}"

  db_secret_condition = "target.secret.id = '${oci_vault_secret.db_admin_password.id}'"
  # The web app reads the database password, its session secret and (optionally) its login password.
  app_secret_ids = concat(
    [oci_vault_secret.db_admin_password.id, oci_vault_secret.session_secret.id],
    var.create_app_password ? [oci_vault_secret.app_password[0].id] : [],
  )
  app_secret_condition = "any {${join(", ", [for id in local.app_secret_ids : "target.secret.id = '${id}'"])}}"
  bucket_condition     = "target.bucket.name = '${var.bucket_name}'"

  iam_statements = concat(
    [
      # The function: HEAD/GET the image (Vision reads it from OBJECT_STORAGE on the caller's
      # behalf, so the function's principal needs read access), call Vision, read the DB password.
      "Allow dynamic-group ${local.dg_fn_name} to read objects in ${local.compartment_scope} where ${local.bucket_condition}",
      "Allow dynamic-group ${local.dg_fn_name} to use ai-service-vision-family in ${local.compartment_scope}",
      "Allow dynamic-group ${local.dg_fn_name} to read secret-bundles in ${local.compartment_scope} where ${local.db_secret_condition}",

      # The web app: upload, list, read and delete images; read bucket settings (doctor checks
      # object events); read its secrets; invoke the function for re-analysis; pull its image
      # from the private OCIR repository with its resource principal.
      "Allow dynamic-group ${local.dg_app_name} to manage objects in ${local.compartment_scope} where ${local.bucket_condition}",
      "Allow dynamic-group ${local.dg_app_name} to read buckets in ${local.compartment_scope} where ${local.bucket_condition}",
      "Allow dynamic-group ${local.dg_app_name} to read secret-bundles in ${local.compartment_scope} where ${local.app_secret_condition}",
      "Allow dynamic-group ${local.dg_app_name} to use fn-invocation in ${local.compartment_scope}",
      "Allow dynamic-group ${local.dg_app_name} to read repos in ${local.compartment_scope}",
    ],
    var.app_vision_access ? [
      "Allow dynamic-group ${local.dg_app_name} to use ai-service-vision-family in ${local.compartment_scope}",
    ] : [],
    [
      # Services: Events invokes the function; Functions attaches to the VCN and pulls the image.
      "Allow service cloudEvents to use functions-family in ${local.compartment_scope}",
      "Allow service faas to use virtual-network-family in ${local.compartment_scope}",
      "Allow service faas to read repos in ${local.compartment_scope}",
    ],
  )
}

resource "oci_identity_dynamic_group" "webapp" {
  count = var.create_iam ? 1 : 0

  compartment_id = var.tenancy_ocid
  name           = local.dg_app_name
  description    = "ocivision web app: container instances in the stack's compartment"
  matching_rule  = local.dg_app_rule
  freeform_tags  = var.freeform_tags
}

resource "oci_identity_dynamic_group" "func" {
  count = var.create_iam ? 1 : 0

  compartment_id = var.tenancy_ocid
  name           = local.dg_fn_name
  description    = "ocivision image-analyzer: functions in the stack's compartment"
  matching_rule  = local.dg_fn_rule
  freeform_tags  = var.freeform_tags
}

resource "oci_identity_policy" "ocivision" {
  count = var.create_iam ? 1 : 0

  compartment_id = var.compartment_ocid
  name           = "${var.project_name}-policy"
  description    = "ocivision: web app, function, Events and Functions service permissions"
  statements     = local.iam_statements
  freeform_tags  = var.freeform_tags

  depends_on = [oci_identity_dynamic_group.webapp, oci_identity_dynamic_group.func]
}
