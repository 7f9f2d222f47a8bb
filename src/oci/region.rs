//! STUB (replaced by the regions work): region and realm → service endpoints.
