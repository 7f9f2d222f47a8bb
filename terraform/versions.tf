# Terraform and provider versions. Only the oracle/oci provider is used; triggers use Terraform's
# built-in terraform_data (Terraform >= 1.4).
#
# oracle/oci >= 8.22.0: the events rule's `actions { action { … } }` block arrived in 8.22.0 (the
# older `actions { actions { … } }` is deprecated there); Vault secret auto-generation
# (`enable_auto_generation`, `secret_generation_context`, 6.26.0) and everything else used here
# (ADB `compute_model` and `secret_id`, Functions application `shape`, Container Instances and
# their `fault_domain`, LB listener `certificate_ids`) is older.

terraform {
  required_version = ">= 1.4.0"

  required_providers {
    oci = {
      source  = "oracle/oci"
      version = ">= 8.22.0"
    }
  }
}

# Credentials come from ~/.oci/config (profile `oci_config_profile`), or from the environment when
# run in OCI Resource Manager / Cloud Shell.
provider "oci" {
  region              = var.region
  config_file_profile = var.oci_config_profile
}
