//! Raw HTTP/2 frame attacks.
