# Input variables. Required: tenancy_ocid, compartment_ocid, region. Everything else has a
# default; see terraform.tfvars.example. No secret is ever an input: the database and web-login
# passwords are generated inside OCI Vault and never reach tfvars or the state.

# ---- where ----

variable "tenancy_ocid" {
  description = "Tenancy OCID (dynamic groups live in the tenancy; also used for the namespace and availability domains)."
  type        = string
}

variable "compartment_ocid" {
  description = "Compartment for every resource of the stack (and the scope of the IAM policy)."
  type        = string
}

variable "region" {
  description = "Region identifier, e.g. eu-frankfurt-1. The OCIR host is derived from its region key (oci_identity_regions)."
  type        = string
}

variable "oci_config_profile" {
  description = "Profile of ~/.oci/config the provider uses; null uses the provider's default (DEFAULT, or the environment in Cloud Shell / Resource Manager)."
  type        = string
  default     = null
}

variable "project_name" {
  description = "Prefix for display names, dynamic groups, policy and secret names."
  type        = string
  default     = "ocivision"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.project_name))
    error_message = "project_name: 2-21 characters, lower-case letters, digits and '-', starting with a letter."
  }
}

variable "freeform_tags" {
  description = "Free-form tags put on every resource that takes them."
  type        = map(string)
  default     = { project = "ocivision" }
}

# ---- rollout (two-phase flow) ----

variable "use_placeholder_images" {
  description = "Phase 1 (true): run a public placeholder image in the container instance and create no function or events rule, so the stack and the OCIR repositories exist before any image is pushed. Phase 2 (false): run the real images given by webapp_image_tag and func_image_tag."
  type        = bool
  default     = true
}

variable "webapp_image_tag" {
  description = "Tag of the webapp image in OCIR (e.g. a git commit id). Required when use_placeholder_images = false. Never `latest`."
  type        = string
  default     = ""

  validation {
    condition     = var.webapp_image_tag != "latest" && can(regex("^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$", var.webapp_image_tag))
    error_message = "webapp_image_tag: a Docker tag other than `latest` (pin a version or commit id), or empty during phase 1."
  }
}

variable "func_image_tag" {
  description = "Tag of the function image in OCIR (e.g. a git commit id). Required when use_placeholder_images = false. Never `latest`."
  type        = string
  default     = ""

  validation {
    condition     = var.func_image_tag != "latest" && can(regex("^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$", var.func_image_tag))
    error_message = "func_image_tag: a Docker tag other than `latest` (pin a version or commit id), or empty during phase 1."
  }
}

variable "placeholder_webapp_image" {
  description = "Public image the container instances run in phase 1. It must answer HTTP 200 on /healthz at app_port (http-echo answers every path)."
  type        = string
  default     = "docker.io/hashicorp/http-echo:1.0"
}

variable "placeholder_webapp_arguments" {
  description = "Arguments for the placeholder image; they must make it listen on app_port. null (default): http-echo's `-listen=:<app_port>` and a short text."
  type        = list(string)
  default     = null
}

variable "webapp_restart_token" {
  description = "Change this value (any string) to replace the container instance without other changes, e.g. after rotating a Vault secret the web app caches."
  type        = string
  default     = "1"
}

# ---- network ----

variable "vcn_cidr" {
  description = "VCN address range."
  type        = string
  default     = "10.20.0.0/16"
}

variable "public_subnet_cidr" {
  description = "Public subnet: the load balancer only."
  type        = string
  default     = "10.20.0.0/24"
}

variable "private_subnet_cidr" {
  description = "Private subnet: container instance, functions and (when enabled) the database private endpoint."
  type        = string
  default     = "10.20.1.0/24"
}

variable "lb_allowed_cidrs" {
  description = "Client ranges allowed to reach the load balancer listeners."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

# ---- object storage ----

variable "bucket_name" {
  description = "Images bucket (private, object events enabled)."
  type        = string
  default     = "ocivision-images"
}

# ---- registry ----

variable "ocir_repo_prefix" {
  description = "Path prefix of the two OCIR repositories: <prefix>/webapp and <prefix>/func."
  type        = string
  default     = "ocivision"
}

variable "ocir_repos_public" {
  description = "Make the OCIR repositories public (anonymous pulls). Keep false: both runtimes pull with their own identity."
  type        = bool
  default     = false
}

variable "ocir_domain" {
  description = "Registry domain appended to the lower-cased region key: ocir.io in the commercial realm (oc1). Change it only for other realms."
  type        = string
  default     = "ocir.io"
}

# ---- web app (container instance) ----

variable "app_port" {
  description = "Port the web app listens on (PORT), the backend port and the health-check port."
  type        = number
  default     = 5000
}

variable "app_private_ip_host" {
  description = "Host number of the first container instance's fixed private IP inside private_subnet_cidr; instance i gets app_private_ip_host + i (each is a load-balancer backend)."
  type        = number
  default     = 10
}

variable "webapp_instance_count" {
  description = "Web-app container instances behind the load balancer, spread over availability domains (then fault domains). They share sessions (the Vault session secret) and take turns reconciling (a lease in the database); each keeps its own login-throttle counts."
  type        = number
  default     = 1

  validation {
    condition     = var.webapp_instance_count >= 1 && var.webapp_instance_count <= 16 && floor(var.webapp_instance_count) == var.webapp_instance_count
    error_message = "webapp_instance_count: a whole number from 1 to 16."
  }
}

variable "container_instance_shape" {
  description = "Container instance shape (x86: the images are linux/amd64)."
  type        = string
  default     = "CI.Standard.E4.Flex"
}

variable "app_ocpus" {
  description = "OCPUs of the container instance."
  type        = number
  default     = 1
}

variable "app_memory_gbs" {
  description = "Memory of the container instance, GB."
  type        = number
  default     = 2
}

variable "availability_domain_index" {
  description = "Index (0-based) of the availability domain of the first container instance; further instances take the next domains in turn."
  type        = number
  default     = 0
}

variable "public_origin" {
  description = "PUBLIC_ORIGIN for the web app's CSRF origin check: the scheme and DNS name browsers use, e.g. https://images.example.com. Required with lb_certificate_id (a certificate names a DNS host, not the LB's IP). Empty without a certificate: http://<LB IP>."
  type        = string
  default     = ""

  validation {
    condition     = var.public_origin == "" || can(regex("^https?://[^/?#\\s]+$", var.public_origin))
    error_message = "public_origin: scheme://host[:port] with no path or trailing slash, e.g. https://images.example.com."
  }
}

variable "reconcile_interval_seconds" {
  description = "RECONCILE_INTERVAL_SECS: seconds between reconciler passes in the web app (0 turns it off). With several instances they take turns through a lease, about one pass per interval in all. 600 repairs a lost event within about 15 minutes (5 min grace + 10) for about 113 requests per 10,000 images."
  type        = number
  default     = 600

  validation {
    condition     = var.reconcile_interval_seconds == 0 || (var.reconcile_interval_seconds >= 60 && var.reconcile_interval_seconds <= 86400)
    error_message = "reconcile_interval_seconds: 0 (off) or 60 to 86400."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of both binaries: error, warn, info, debug or trace."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["error", "warn", "info", "debug", "trace"], var.log_level)
    error_message = "log_level: one of error, warn, info, debug, trace."
  }
}

variable "create_app_password" {
  description = "Generate a web-login password in Vault and pass its OCID as APP_PASSWORD_SECRET_OCID."
  type        = bool
  default     = true
}

# ---- function ----

variable "function_memory_mb" {
  description = "Function memory, MB (OCI allows 128, 256, 512, 1024, 2048, 3072)."
  type        = number
  default     = 256

  validation {
    condition     = contains([128, 256, 512, 1024, 2048, 3072], var.function_memory_mb)
    error_message = "function_memory_mb: one of 128, 256, 512, 1024, 2048, 3072."
  }
}

variable "function_timeout_seconds" {
  description = "Function timeout, seconds (sync maximum 300)."
  type        = number
  default     = 120

  validation {
    condition     = var.function_timeout_seconds >= 5 && var.function_timeout_seconds <= 300
    error_message = "function_timeout_seconds: 5 to 300."
  }
}

variable "vision_max_results" {
  description = "VISION_MAX_RESULTS: most objects Vision returns per image."
  type        = number
  default     = 50
}

variable "vision_text" {
  description = "VISION_TEXT: also ask Vision for TEXT_DETECTION (words and lines, searchable) in the same AnalyzeImage call as OBJECT_DETECTION; off, one feature per call. What two features cost in transactions and against the rate limit is in docs/FUNCTION.md (partly unconfirmed)."
  type        = bool
  default     = true
}

variable "vision_tps" {
  description = "VISION_TPS: Vision requests per second the function instances share through their pacer (docs/SCALING.md). 0 leaves it to the function: the region's default limit, 10 in Ashburn, Phoenix and London, 5 elsewhere. Set it to the tenancy's limit when a service request raised it, or lower when other callers share it."
  type        = number
  default     = 0

  validation {
    condition     = var.vision_tps >= 0 && var.vision_tps <= 1000
    error_message = "vision_tps: 0 (the region's default) to 1000."
  }
}

variable "function_log_retention_days" {
  description = "Retention of the function's invocation log in OCI Logging, days (30-day steps up to 180)."
  type        = number
  default     = 30

  validation {
    condition     = contains([30, 60, 90, 120, 150, 180], var.function_log_retention_days)
    error_message = "function_log_retention_days: 30, 60, 90, 120, 150 or 180."
  }
}

# ---- database ----

variable "db_name" {
  description = "Autonomous Database name (letters and digits, at most 14, unique in the tenancy)."
  type        = string
  default     = "ocivision"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9]{0,13}$", var.db_name))
    error_message = "db_name: a letter, then letters or digits; 14 characters at most."
  }
}

variable "db_version" {
  description = "Autonomous Database version. Checked at plan time against the versions the oci_database_autonomous_db_versions data source offers for AJD (the plan fails naming them). Changing it on an existing database upgrades it."
  type        = string
  default     = "23ai"
}

variable "ords_conditional_writes" {
  description = "Whether ORDS honours If-Match and If-None-Match on SODA document writes (webapp doctor's SODA lines say; issue 24). false: the functions pace Vision per instance at vision_tps / function_max_instances (ORDS_CONDITIONAL_WRITES=off) and only web-app instance 0 reconciles (RECONCILER_DESIGNATED)."
  type        = bool
  default     = true
}

variable "function_max_instances" {
  description = "With ords_conditional_writes = false: the most function instances expected to run at once (FUNCTION_MAX_INSTANCES); each paces itself at vision_tps divided by this. OCI documents no cap of its own: beyond it, Vision's 429s make instances back off."
  type        = number
  default     = 20

  validation {
    condition     = var.function_max_instances >= 1
    error_message = "function_max_instances must be at least 1."
  }
}

variable "vision_broad_object_read" {
  description = "Add `read objects` for the function without the bucket condition, when webapp doctor finds that Vision will not read OBJECT_STORAGE images with the bucket-scoped grant (Oracle's Vision policy page asks for broader access). Until then the function sends images inline."
  type        = bool
  default     = false
}

variable "db_ecpu_count" {
  description = "ECPUs of the Autonomous JSON Database (ECPU model: at least 2)."
  type        = number
  default     = 2
}

variable "db_auto_scaling" {
  description = "Let the database scale up to 3x its ECPUs under load (billed per use)."
  type        = bool
  default     = false
}

variable "db_storage_tbs" {
  description = "Database storage, TB."
  type        = number
  default     = 1
}

variable "enable_private_endpoint" {
  description = "true: the database gets a private endpoint in the private subnet behind an NSG (HTTPS from the private subnet only). false: public endpoint restricted by an access control list (the VCN plus db_allowed_cidrs)."
  type        = bool
  default     = true
}

variable "db_allowed_cidrs" {
  description = "Extra client ranges in the database ACL when enable_private_endpoint = false (e.g. your workstation, to run `webapp doctor` locally)."
  type        = list(string)
  default     = []
}

variable "db_ords_base_url" {
  description = "Override for DB_ORDS_BASE_URL (must end in /ords/). Empty: derived from the database's connection URLs."
  type        = string
  default     = ""
}

variable "db_schema" {
  description = "DB_SCHEMA: ORDS schema alias."
  type        = string
  default     = "admin"
}

variable "db_collection" {
  description = "DB_COLLECTION: SODA collection name (case-sensitive)."
  type        = string
  default     = "IMAGE_ANALYSIS"
}

variable "db_username" {
  description = "DB_USERNAME for ORDS Basic authentication."
  type        = string
  default     = "ADMIN"
}

# ---- vault ----

variable "vault_key_protection_mode" {
  description = "Protection mode of the master key that encrypts the secrets: HSM (first 20 key versions free in a default vault) or SOFTWARE."
  type        = string
  default     = "HSM"

  validation {
    condition     = contains(["HSM", "SOFTWARE"], var.vault_key_protection_mode)
    error_message = "vault_key_protection_mode: HSM or SOFTWARE."
  }
}

# ---- load balancer ----

variable "lb_min_bandwidth_mbps" {
  description = "Flexible load balancer minimum bandwidth, Mbps (10 is the smallest)."
  type        = number
  default     = 10
}

variable "lb_max_bandwidth_mbps" {
  description = "Flexible load balancer maximum bandwidth, Mbps."
  type        = number
  default     = 10
}

variable "lb_idle_timeout_seconds" {
  description = "Listener idle timeout, seconds: the longest gap between sends or between receives within one request. Above the web app's own 30 s read and write timeouts, so the app answers first (see loadbalancer.tf)."
  type        = number
  default     = 60

  validation {
    condition     = var.lb_idle_timeout_seconds > 30 && var.lb_idle_timeout_seconds <= 7200
    error_message = "lb_idle_timeout_seconds: above 30 (the web app's read/write timeouts) and at most 7200 (OCI's maximum)."
  }
}

variable "lb_certificate_id" {
  description = "OCID of a certificate in the OCI Certificates service. Non-empty: adds an HTTPS listener on 443 with it."
  type        = string
  default     = ""
}

# ---- IAM ----

variable "create_iam" {
  description = "Create the two dynamic groups and the policy. false: nothing is created and the output iam_statements prints what an administrator must create."
  type        = bool
  default     = true
}

variable "app_vision_access" {
  description = "Also let the web app call AI Vision directly (re-analysis normally goes through the function)."
  type        = bool
  default     = true
}
