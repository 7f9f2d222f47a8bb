# Flexible public load balancer → each container instance's private IP on PORT (one backend per
# instance, round robin; sessions need no stickiness, they are valid on every instance).
#
# Timeouts, checked against the web app's (src/http/limits.rs, Limits::public), from OCI's "Load
# Balancer Timeout Connection Settings" page (docs/Content/Balance/Reference/connectionreuse.htm):
# - Between requests, LB → backend: OCI has no setting for it. The LB pools backend connections,
#   closes one after 300 s idle, ignores the backend's keep-alive, and asks backends not to close
#   idle connections before 310 s, or a request the LB sends on a connection the backend is
#   closing gets a 502. So here the LB's side must be the shorter one: the app waits 330 s for
#   the next request (idle_timeout), and the LB always closes first. Idle connections cost the
#   app a file descriptor and no thread, so the pool can grow (the app logs its capacity, up to
#   100,000 within its open-file limit) and backendMaxConnections is left unset (unlimited).
# - Between requests, client → LB: fixed by OCI at 65 s idle or 10,000 requests.
# - Within a request: the listener's idle_timeout_in_seconds below bounds the gap between two
#   successive receives or two successive sends while a request or response is under way (not
#   the wait for the next request). Here the app's side must be the shorter one, so the app,
#   not the LB, decides and answers: its gaps are at most 30 s (read_timeout, write_timeout),
#   a whole head 10 s and a whole body 120 s (408), and a handler waits at most 20 s on the
#   services it calls before it answers. The variable therefore must stay above 30 s; 60 s
#   (OCI's HTTP default, set explicitly) leaves room.

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
