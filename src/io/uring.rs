//! Production implementation of the seam on compio's io_uring driver.
