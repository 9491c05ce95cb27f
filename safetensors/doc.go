// Package safetensors reads and writes the safetensors checkpoint format, the
// sharded checkpoint folders of Hugging Face models, and PEFT LoRA adapter
// folders.
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON header, and the byte buffer the header describes:
//
//	{"__metadata__": {"k": "v"},
//	 "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
//
// Reading validates the header as strictly as the Rust reference
// implementation, and more: the header length is bounded (≤ 100 MB and ≤
// the input size − 8), the header is valid UTF-8 holding one JSON object with
// no duplicate keys and no unknown fields, every dtype is known, each
// tensor's byte size equals the product of its shape times its dtype size
// (overflow-checked), the tensors' byte ranges are contiguous,
// non-overlapping and cover the buffer exactly, and metadata values are
// strings. A malformed input gives an error naming the file and the tensor
// or field at fault; it never panics, and no allocation is larger than the
// input justifies: the header buffer is bounded by the input size, and a
// tensor is read only after its byte range has been checked against it.
//
// Tensor data is read lazily, one tensor at a time, so a checkpoint larger
// than memory can be inspected and loaded piecewise. F32, F16, BF16 and F64
// tensors convert to float32; other dtypes are available as raw bytes.
//
// Writing is deterministic: tensors are ordered as the reference orders them
// (dtype alignment descending, then name), metadata keys are sorted, JSON is
// compact and escaped as serde_json escapes it, and the header is padded with
// spaces to a multiple of 8 bytes.
package safetensors
