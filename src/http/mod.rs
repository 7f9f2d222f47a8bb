//! STUB (replaced by the HTTP work): our strict blocking HTTP/1.1 layer.
