//! The client side: filled in below.
