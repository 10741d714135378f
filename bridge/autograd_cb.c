// Installs bridge's exported Go callbacks (autograd_func.go) in the shim.
#include "_cgo_export.h"

void hc_bridge_install_callbacks(void) { hc_autograd_set_callbacks(hcGoBackward, hcGoHook); }
