# Flexible public load balancer → each container instance's private IP on PORT (one backend per
# instance, round robin; sessions need no stickiness, they are valid on every instance).
# The listener idle timeout is set explicitly (60 s by default); the web app keeps idle backend
# connections 330 s, longer than the LB's 300 s, so the LB never reuses a connection the backend
# has just closed.

resource "oci_load_balancer_load_balancer" "lb" {
  compartment_id = var.compartment_ocid
  display_name   = "${var.project_name}-lb"
  shape          = "flexible"
  subnet_ids     = [oci_core_subnet.public.id]
  is_private     = false
  freeform_tags  = var.freeform_tags

  shape_details {
    minimum_bandwidth_in_mbps = var.lb_min_bandwidth_mbps
    maximum_bandwidth_in_mbps = var.lb_max_bandwidth_mbps
  }
}

resource "oci_load_balancer_backend_set" "webapp" {
  load_balancer_id = oci_load_balancer_load_balancer.lb.id
  name             = "webapp"
  policy           = "ROUND_ROBIN"

  health_checker {
    protocol          = "HTTP"
    port              = var.app_port
    url_path          = "/healthz"
    return_code       = 200
    interval_ms       = 10000
    timeout_in_millis = 3000
    retries           = 3
  }
}

moved {
  from = oci_load_balancer_backend.webapp
  to   = oci_load_balancer_backend.webapp[0]
}

resource "oci_load_balancer_backend" "webapp" {
  count = var.webapp_instance_count

  load_balancer_id = oci_load_balancer_load_balancer.lb.id
  backendset_name  = oci_load_balancer_backend_set.webapp.name
  ip_address       = local.app_private_ips[count.index]
  port             = var.app_port

  # The IP is fixed, but register it only once the instance holding it exists.
  depends_on = [oci_container_instances_container_instance.webapp]
}

resource "oci_load_balancer_listener" "http" {
  load_balancer_id         = oci_load_balancer_load_balancer.lb.id
  name                     = "http"
  port                     = 80
  protocol                 = "HTTP"
  default_backend_set_name = oci_load_balancer_backend_set.webapp.name

  connection_configuration {
    idle_timeout_in_seconds = var.lb_idle_timeout_seconds
  }
}

# Optional HTTPS listener with a certificate from the OCI Certificates service.
resource "oci_load_balancer_listener" "https" {
  count = local.https_enabled ? 1 : 0

  load_balancer_id         = oci_load_balancer_load_balancer.lb.id
  name                     = "https"
  port                     = 443
  protocol                 = "HTTP"
  default_backend_set_name = oci_load_balancer_backend_set.webapp.name

  connection_configuration {
    idle_timeout_in_seconds = var.lb_idle_timeout_seconds
  }

  ssl_configuration {
    certificate_ids         = [var.lb_certificate_id]
    protocols               = ["TLSv1.2"]
    verify_peer_certificate = false
  }

  lifecycle {
    precondition {
      condition     = startswith(var.public_origin, "https://")
      error_message = "lb_certificate_id is set, so public_origin must be set too: the https:// origin of the DNS name the certificate is for (e.g. public_origin = \"https://images.example.com\"). Browsers send that origin, and the web app's CSRF check compares against it; the load balancer's IP address would not match."
    }
  }
}
