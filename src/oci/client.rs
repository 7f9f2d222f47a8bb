//! STUB: the signed transport.
