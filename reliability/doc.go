// Package reliability holds cross-package tests only: commands written under fire while a
// training loop runs (controller and kernel), the kill -9 campaign (a training process killed
// 50 times while commands are appended; HOTCB_KILLS sets the count), the soak test
// (HOTCB_SOAK=1 for 100,000 safe points) and the control plane's security rules (file modes,
// output paths, run directories and planted links, with a second user when run as root). The faults that
// concern one package live next to it (*_reliability_test.go); README "Reliability and security"
// lists them all.
package reliability
