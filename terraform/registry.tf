# OCIR repositories for the two images, private by default. Both runtimes pull with their own
# identity (container instance: resource principal + `read repos`; Functions: the faas service).
#
# Registry host: <region key>.ocir.io, with the region KEY (e.g. FRA, IAD, and for newer regions
# keys that are not a prefix of the region name) looked up from oci_identity_regions, lower-cased.

data "oci_identity_regions" "all" {}

locals {
  region_key = lower(one([for r in data.oci_identity_regions.all.regions : r.key if r.name == var.region]))
  ocir_host  = "${local.region_key}.${var.ocir_domain}"
  namespace  = data.oci_objectstorage_namespace.this.namespace

  webapp_repository = "${local.ocir_host}/${local.namespace}/${oci_artifacts_container_repository.webapp.display_name}"
  func_repository   = "${local.ocir_host}/${local.namespace}/${oci_artifacts_container_repository.func.display_name}"

  webapp_image = var.use_placeholder_images ? var.placeholder_webapp_image : "${local.webapp_repository}:${var.webapp_image_tag}"
  func_image   = "${local.func_repository}:${var.func_image_tag}"
}

resource "oci_artifacts_container_repository" "webapp" {
  compartment_id = var.compartment_ocid
  display_name   = "${var.ocir_repo_prefix}/webapp"
  is_public      = var.ocir_repos_public
  is_immutable   = false
  freeform_tags  = var.freeform_tags
}

resource "oci_artifacts_container_repository" "func" {
  compartment_id = var.compartment_ocid
  display_name   = "${var.ocir_repo_prefix}/func"
  is_public      = var.ocir_repos_public
  is_immutable   = false
  freeform_tags  = var.freeform_tags
}
