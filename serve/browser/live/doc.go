// Package live holds the test that opens hotcb serve's page on a real training run: the
// trainer of `hotcb train` (libtorch, a small CNN on generated shapes) in this process, its
// kernel writing the run directory, and headless Chromium clicking the page's controls. It is
// a package of its own because it links libtorch, which package browser does not.
package live
