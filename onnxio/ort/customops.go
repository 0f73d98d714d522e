package ort

// Custom-operator libraries (SessionOptions.CustomOpsLibrary).
//
// onnxruntime_go has no call for ORT's RegisterCustomOpsLibrary_V2, so it
// is reached here through the C API of the library onnxruntime_go loaded:
// OrtGetApiBase, GetApi(ortAPIVersion), and the function pointers of the
// OrtApi table at the positions below. ORT only ever appends to that table,
// so the positions hold for every later version; TestOrtAPIPositions checks
// them against the header onnxruntime_go ships.

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const void *(*GetApi)(uint32_t); const char *(*GetVersionString)(void); } bnApiBase;
typedef void *(*bnRegisterV2)(void *options, const char *path);
typedef const char *(*bnErrorMessage)(const void *status);
typedef void (*bnReleaseStatus)(void *status);

// bn_register registers the custom-op library lib with the session options
// opts through the ORT library ortlib (already loaded); it returns NULL or a
// malloc'd error message.
static char *bn_register(void *opts, const char *ortlib, const char *lib, uint32_t version, int reg, int msg, int rel) {
	void *h = dlopen(ortlib, RTLD_NOW | RTLD_NOLOAD);
	if (h == NULL) return strdup("the ONNX Runtime library is not loaded");
	const bnApiBase *(*getBase)(void) = (const bnApiBase *(*)(void))dlsym(h, "OrtGetApiBase");
	dlclose(h); // onnxruntime_go's own handle keeps it loaded
	if (getBase == NULL) return strdup("OrtGetApiBase not found in the ONNX Runtime library");
	void *const *api = (void *const *)getBase()->GetApi(version);
	if (api == NULL) return strdup("the ONNX Runtime library lacks the C API version bnaudit was built for");
	void *status = ((bnRegisterV2)api[reg])(opts, lib);
	if (status == NULL) return NULL;
	char *out = strdup(((bnErrorMessage)api[msg])(status));
	((bnReleaseStatus)api[rel])(status);
	return out;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// ortAPIVersion is the C API version onnxruntime_go is built against
// (ORT_API_VERSION in its onnxruntime_c_api.h), and the ort*Index constants
// are positions of function pointers in that version's OrtApi table.
const (
	ortAPIVersion       = 24
	ortErrorMessage     = 2
	ortReleaseStatus    = 93
	ortRegisterCustomV2 = 228
)

// sessionOptionsPtr returns the OrtSessionOptions* onnxruntime_go keeps in
// the unexported first field of its SessionOptions, checking by reflection
// that the field is still there and a pointer.
func sessionOptionsPtr(so *ort.SessionOptions) (unsafe.Pointer, error) {
	t := reflect.TypeOf(*so)
	if t.NumField() < 1 || t.Field(0).Offset != 0 || t.Field(0).Type.Kind() != reflect.Pointer {
		return nil, errors.New("onnxruntime_go's SessionOptions no longer starts with the OrtSessionOptions pointer")
	}
	p := *(*unsafe.Pointer)(unsafe.Pointer(so))
	if p == nil {
		return nil, errors.New("session options not initialized")
	}
	return p, nil
}

// registerCustomOps has ORT load the custom-op library at path into so.
func registerCustomOps(so *ort.SessionOptions, path string) error {
	p, err := sessionOptionsPtr(so)
	if err != nil {
		return fmt.Errorf("ort: custom ops %s: %v", path, err)
	}
	cort, clib := C.CString(LibraryPath()), C.CString(path)
	defer C.free(unsafe.Pointer(cort))
	defer C.free(unsafe.Pointer(clib))
	if msg := C.bn_register(p, cort, clib, ortAPIVersion, ortRegisterCustomV2, ortErrorMessage, ortReleaseStatus); msg != nil {
		defer C.free(unsafe.Pointer(msg))
		return fmt.Errorf("ort: register custom ops %s: %s", path, C.GoString(msg))
	}
	return nil
}

// infoWithCustomOps is ort.GetInputOutputInfoWithONNXData for a model that
// needs the custom-op library at path: onnxruntime_go takes session options
// for this only with a model file, so the model goes through a temporary one.
func infoWithCustomOps(model []byte, path string) (ins, outs []ort.InputOutputInfo, err error) {
	f, err := os.CreateTemp("", "bnaudit-model-*.onnx")
	if err != nil {
		return nil, nil, fmt.Errorf("ort: %v", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(model); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("ort: %v", err)
	}
	if err := f.Close(); err != nil {
		return nil, nil, fmt.Errorf("ort: %v", err)
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, nil, fmt.Errorf("ort: session options: %v", err)
	}
	defer so.Destroy()
	if err := registerCustomOps(so, path); err != nil {
		return nil, nil, err
	}
	return ort.GetInputOutputInfoWithOptions(f.Name(), so)
}
