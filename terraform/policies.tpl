# The IAM policy statements of ocivision, one per line; lines starting with # are comments.
#
# One file for both places that enforce them: Terraform fills it with templatefile() (iam.tf:
# the deployment's dynamic-group names, compartment, bucket and secret OCIDs) and the local
# emulator fills it with its own names (src/emulator/iam.rs), so local mode runs under exactly
# these rules and a statement missing here fails locally first. The emulator understands the
# forms used below and refuses anything else with a message: keep to them.
#
# The function: HEAD/GET the uploaded image (Vision reads OBJECT_STORAGE sources with the
# caller's rights, so the function's principal needs read access), call Vision, read the
# database password.
Allow dynamic-group ${function_dg} to read objects in compartment id ${compartment_id} where target.bucket.name = '${bucket}'
Allow dynamic-group ${function_dg} to use ai-service-vision-family in compartment id ${compartment_id}
Allow dynamic-group ${function_dg} to read secret-bundles in compartment id ${compartment_id} where target.secret.id = '${db_secret_id}'
#
# The web app: upload, list, read and delete images; read bucket settings (the doctor checks
# object events); read its secrets; invoke the function for re-analysis; pull its image from
# the private OCIR repository with its resource principal.
Allow dynamic-group ${webapp_dg} to manage objects in compartment id ${compartment_id} where target.bucket.name = '${bucket}'
Allow dynamic-group ${webapp_dg} to read buckets in compartment id ${compartment_id} where target.bucket.name = '${bucket}'
Allow dynamic-group ${webapp_dg} to read secret-bundles in compartment id ${compartment_id} where ${app_secret_condition}
Allow dynamic-group ${webapp_dg} to use fn-invocation in compartment id ${compartment_id}
Allow dynamic-group ${webapp_dg} to read repos in compartment id ${compartment_id}
%{ if app_vision_access ~}
Allow dynamic-group ${webapp_dg} to use ai-service-vision-family in compartment id ${compartment_id}
%{ endif ~}
#
# Services: Events invokes the function; Functions attaches to the VCN and pulls the image.
Allow service cloudEvents to use functions-family in compartment id ${compartment_id}
Allow service faas to use virtual-network-family in compartment id ${compartment_id}
Allow service faas to read repos in compartment id ${compartment_id}
