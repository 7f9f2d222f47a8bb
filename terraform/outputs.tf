# Outputs: where the app is, how to build and push, and what to do next.

locals {
  application_url = var.public_origin != "" ? "${var.public_origin}/" : "http://${local.lb_ip}/"
  # Suggested tag: the tags in use, else the current commit id (never `latest`).
  suggested_tag = var.webapp_image_tag != "" ? var.webapp_image_tag : "$(git rev-parse --short=12 HEAD)"
  function_id   = var.use_placeholder_images ? "" : oci_functions_function.image_analyzer[0].id
  invoke_url    = var.use_placeholder_images ? "" : oci_functions_function.image_analyzer[0].invoke_endpoint
}

output "application_url" {
  description = "The web app behind the load balancer (set PUBLIC_ORIGIN through var.public_origin when you put a DNS name in front)."
  value       = local.application_url
}

output "webapp_private_ips" {
  description = "Private IPs of the web-app container instances (the load balancer's backends)."
  value       = local.app_private_ips
}

output "load_balancer_ip" {
  description = "Public IP of the load balancer."
  value       = local.lb_ip
}

output "ocir_host" {
  description = "Registry host for this region: lower-cased region key + .ocir.io."
  value       = local.ocir_host
}

output "webapp_image_repository" {
  description = "Repository of the webapp image (append :<tag>)."
  value       = local.webapp_repository
}

output "func_image_repository" {
  description = "Repository of the function image (append :<tag>)."
  value       = local.func_repository
}

output "webapp_image" {
  description = "Image the container instance runs now."
  value       = local.webapp_image
}

output "func_image" {
  description = "Image the function runs now (empty in phase 1: no function yet)."
  value       = var.use_placeholder_images ? "" : local.func_image
}

output "build_commands" {
  description = "Log in to OCIR, build both images for linux/amd64 and push them; then apply again with the tag."
  value       = <<-EOT
    # Run from the repository root. The password is an OCI auth token (Profile > Auth tokens).
    # Username: <namespace>/<user name>; for users of a non-default identity domain
    # <namespace>/<domain name>/<user name>.
    docker login ${local.ocir_host} -u '${local.namespace}/<your user name>'

    TAG=${local.suggested_tag}
    docker buildx build --platform=linux/amd64 --target webapp -t ${local.webapp_repository}:$TAG --push .
    docker buildx build --platform=linux/amd64 --target func   -t ${local.func_repository}:$TAG --push .

    # Phase 2: switch from the placeholder to the real images.
    terraform -chdir=terraform apply -var use_placeholder_images=false -var webapp_image_tag=$TAG -var func_image_tag=$TAG
  EOT
}

output "ords_url" {
  description = "DB_ORDS_BASE_URL: the ORDS base URL (ends in /ords/); SODA lives under <ords_url><schema>/soda/latest/."
  value       = local.ords_base_url
}

output "db_password_secret_ocid" {
  description = "Vault secret holding the ADMIN password (DB_PASSWORD_SECRET_OCID)."
  value       = oci_vault_secret.db_admin_password.id
}

output "app_password_secret_ocid" {
  description = "Vault secret holding the web login password (APP_PASSWORD_SECRET_OCID), empty when not created."
  value       = var.create_app_password ? oci_vault_secret.app_password[0].id : ""
}

output "function_id" {
  description = "FUNCTION_ID (empty in phase 1)."
  value       = local.function_id
}

output "function_invoke_endpoint" {
  description = "FUNCTION_INVOKE_ENDPOINT (empty in phase 1)."
  value       = local.invoke_url
}

output "webapp_environment" {
  description = "Environment of the web app container (no secret values: only secret OCIDs). Export it to run `webapp doctor` from a workstation."
  value       = local.webapp_env
}

output "doctor_command" {
  description = "The first step after apply (docs/DEPLOY.md, section 7): `webapp doctor` from a workstation, in the web app's image, with the deployment's configuration and your OCI config file. It probes every assumption no Oracle source confirms, removes what it writes, and exits non-zero when a required one fails."
  value       = <<-EOT
    docker run --rm --user "$(id -u):$(id -g)" -e HOME="$HOME" -v "$HOME/.oci:$HOME/.oci:ro" \
      -e OCI_CONFIG_FILE="$HOME/.oci/config" \
      ${join(" \\\n      ", [for k, v in local.webapp_env : "-e ${k}='${v}'" if !contains(["PORT", "BIND"], k)])} \
      ${local.webapp_image} doctor
  EOT
}

output "iam_statements" {
  description = "Dynamic-group matching rules and policy statements. Created by Terraform when create_iam = true; otherwise paste them (tenancy: dynamic groups; stack compartment or above: policy)."
  value       = <<-EOT
    ${var.create_iam ? "# Created by this stack (create_iam = true); shown for reference." : "# NOT created (create_iam = false). An administrator must create:"}
    # Dynamic group ${local.dg_app_name} (in the tenancy / Default identity domain), matching rule:
    ${local.dg_app_rule}
    # Dynamic group ${local.dg_fn_name}, matching rule:
    ${local.dg_fn_rule}
    # Policy ${var.project_name}-policy (in compartment ${var.compartment_ocid} or an ancestor), statements:
    ${join("\n", local.iam_statements)}
  EOT
}

output "deployment_summary" {
  description = "What exists, and the next steps."
  value       = <<-EOT
    ocivision in ${var.region} (${var.use_placeholder_images ? "phase 1: placeholder web image, no function yet" : "phase 2: real images"})
      web app            ${local.application_url}  (${var.webapp_instance_count} container instance(s) at ${join(", ", local.app_private_ips)} port ${var.app_port}, health /healthz)
      reconciler         ${var.reconcile_interval_seconds == 0 ? "off" : "every ${var.reconcile_interval_seconds} s, one instance at a time (lease in the database)"}
      images bucket      ${local.namespace}/${oci_objectstorage_bucket.images.name} (private, object events on)
      database           ${oci_database_autonomous_database.adb.display_name}, AJD ${var.db_version}, ${var.db_ecpu_count} ECPU, ${var.enable_private_endpoint ? "private endpoint" : "public endpoint + ACL"}
      ORDS               ${local.ords_base_url}${var.db_schema}/soda/latest/${var.db_collection}
      function           ${var.use_placeholder_images ? "(created in phase 2)" : "image-analyzer ${local.function_id}"}
      events rule        ${var.use_placeholder_images ? "(created in phase 2)" : "create/update/delete in ${var.bucket_name}"}
      IAM                ${var.create_iam ? "created (dynamic groups + policy)" : "NOT created: see `terraform output iam_statements`"}

    Next steps:
    ${var.use_placeholder_images ? "1. terraform output -raw build_commands   # log in to OCIR, build and push both images\n2. apply again with use_placeholder_images=false and the two tags (last line of build_commands)\n3. run `terraform output -raw doctor_command` (docs/DEPLOY.md, section 7) and open the URL above" : "1. run `terraform output -raw doctor_command` (docs/DEPLOY.md, section 7): config, resource principal, bucket events, secrets, ORDS and its unconfirmed behaviours, Vision as the function, delivery\n2. open ${local.application_url} and upload a photo; the result appears within seconds\n3. new release: build with a new TAG and apply with the new tags"}
  EOT
}
