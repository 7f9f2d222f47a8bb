# IAM: one dynamic group per runtime and one policy in the stack's compartment. With
# create_iam = false nothing is created; `terraform output iam_statements` prints the matching
# rules and statements for an administrator to create by hand (names and OCIDs filled in).
#
# Resource principals: Functions run as resource.type 'fnfunc', Container Instances as
# 'computecontainerinstance' (a wrong type here is the usual cause of 404 NotAuthorizedOrNotFound
# from Vision or Object Storage). Policy changes can take a few minutes (functions cache their
# resource-principal token up to 15 minutes).

locals {
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

  # Where `webapp doctor` finds that Vision will not read the function's images with the
  # bucket-scoped grant in policies.tpl (Oracle's Vision policy page asks for broader access;
  # issue 24), this statement without the bucket condition lets it. Until then the function
  # sends images inline.
  vision_read_statements = var.vision_broad_object_read ? [
    "Allow dynamic-group ${local.dg_fn_name} to read objects in compartment id ${var.compartment_ocid}",
  ] : []

  # The statements live in policies.tpl, which the local emulator also reads (one file, so
  # local mode and the deployment run under the same rules). One statement per line; comment
  # lines and the blank lines left by template directives are dropped.
  iam_statements = concat([
    for line in split("\n", templatefile("${path.module}/policies.tpl", {
      function_dg          = local.dg_fn_name
      webapp_dg            = local.dg_app_name
      compartment_id       = var.compartment_ocid
      bucket               = var.bucket_name
      db_secret_id         = oci_vault_secret.db_admin_password.id
      app_secret_condition = local.app_secret_condition
      app_vision_access    = var.app_vision_access
    })) : trimspace(line) if trimspace(line) != "" && !startswith(trimspace(line), "#")
  ], local.vision_read_statements)
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
