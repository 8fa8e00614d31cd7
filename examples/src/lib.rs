//! Runnable programs a new user starts from; see the `[[example]]` targets.
