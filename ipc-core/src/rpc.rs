//! Request/response over a channel (in progress).
