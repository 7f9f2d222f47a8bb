# Autonomous JSON Database (AJD, 23ai, ECPU). The ADMIN password comes from the Vault secret
# (`secret_id`): Terraform never sees it. ORDS (SODA for REST) is reached over plain HTTPS, so
# mTLS is off; access is limited either by a private endpoint (NSG: HTTPS from the private subnet
# only) or, when public, by an access control list holding the VCN (traffic through the service
# gateway is matched by VCN OCID, not by address) plus db_allowed_cidrs.

resource "oci_core_network_security_group" "adb" {
  count = var.enable_private_endpoint ? 1 : 0

  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.main.id
  display_name   = "${var.project_name}-adb-nsg"
  freeform_tags  = var.freeform_tags
}

resource "oci_core_network_security_group_security_rule" "adb_https_in" {
  count = var.enable_private_endpoint ? 1 : 0

  network_security_group_id = oci_core_network_security_group.adb[0].id
  direction                 = "INGRESS"
  protocol                  = "6"
  source                    = var.private_subnet_cidr
  source_type               = "CIDR_BLOCK"
  description               = "ORDS (HTTPS) from the container instance and the functions"
  stateless                 = false

  tcp_options {
    destination_port_range {
      min = 443
      max = 443
    }
  }
}

resource "oci_database_autonomous_database" "adb" {
  compartment_id              = var.compartment_ocid
  db_name                     = var.db_name
  display_name                = "${var.project_name}-ajd"
  db_workload                 = "AJD"
  db_version                  = var.db_version
  compute_model               = "ECPU"
  compute_count               = var.db_ecpu_count
  is_auto_scaling_enabled     = var.db_auto_scaling
  data_storage_size_in_tbs    = var.db_storage_tbs
  license_model               = "LICENSE_INCLUDED" # AJD does not accept BYOL
  is_free_tier                = false
  is_mtls_connection_required = false

  # ADMIN password from Vault; a rotated secret (new current version) is pushed on the next apply.
  secret_id             = oci_vault_secret.db_admin_password.id
  secret_version_number = oci_vault_secret.db_admin_password.current_version_number

  # Private endpoint ...
  subnet_id              = var.enable_private_endpoint ? oci_core_subnet.private.id : null
  nsg_ids                = var.enable_private_endpoint ? [oci_core_network_security_group.adb[0].id] : null
  private_endpoint_label = var.enable_private_endpoint ? lower(var.db_name) : null

  # ... or public endpoint with an ACL.
  whitelisted_ips = var.enable_private_endpoint ? null : concat([oci_core_vcn.main.id], var.db_allowed_cidrs)

  freeform_tags = var.freeform_tags

  lifecycle {
    precondition {
      condition     = contains(local.db_versions_offered, var.db_version)
      error_message = "db_version = \"${var.db_version}\" is not offered for Autonomous JSON Database here (data source oci_database_autonomous_db_versions, db_workload AJD). Offered: ${join(", ", local.db_versions_offered)}. Set db_version to one of them."
    }
  }
}

# The versions Autonomous Database offers for AJD in this region and tenancy: db_version must be
# one of them (Oracle's pages have named 19c, 23ai and 26ai over time; the provider's data source,
# not a page, says which are valid now).
data "oci_database_autonomous_db_versions" "ajd" {
  compartment_id = var.compartment_ocid
  db_workload    = "AJD"
}

locals {
  db_versions_offered = sort(distinct([for v in data.oci_database_autonomous_db_versions.ajd.autonomous_db_versions : v.version]))
}

locals {
  # ORDS base URL ending in /ords/. ORDS lives at /ords/ on the database's HTTPS host; take the host
  # from ords_url (or, on older provider versions, from the SQL Developer Web or APEX URL).
  adb_urls       = try(oci_database_autonomous_database.adb.connection_urls[0], null)
  adb_any_url    = try(coalesce(local.adb_urls.ords_url, local.adb_urls.sql_dev_web_url, local.adb_urls.apex_url), "")
  adb_https_host = try(regex("^https://[^/]+", local.adb_any_url), "")
  ords_base_url  = var.db_ords_base_url != "" ? var.db_ords_base_url : (local.adb_https_host != "" ? "${local.adb_https_host}/ords/" : "")
}
