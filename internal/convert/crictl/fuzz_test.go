package crictl

import "testing"

// Convert takes any pod and container config bytes without panicking.
func FuzzConvert(f *testing.F) {
	f.Add([]byte(`{"metadata": {"name": "web", "namespace": "default"}, "hostname": "web"}`), []byte(`{"metadata": {"name": "app"}, "image": {"image": "busybox"}}`))
	f.Add([]byte("metadata:\n  name: web\n"), []byte("image:\n  image: busybox\nmounts:\n- host_path: /x\n  container_path: /y\n"))
	f.Add([]byte(`{}`), []byte(`[]`))
	f.Fuzz(func(t *testing.T, pod, ctr []byte) {
		_, _ = Convert(File{Name: "pod.json", Data: pod}, []File{{Name: "c.json", Data: ctr}}, Options{})
	})
}
