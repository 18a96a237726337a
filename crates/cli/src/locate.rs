//! Finding the annotations folder.
