package kernels

// ModelShapes lists the products of one training step of the reference
// models (MLP 784-256-256-10 at batch 128; transformer d=128, seq 64,
// batch 16, 4 heads; LoRA r=16), for benchmarks.
func ModelShapes() []benchShape {
	return []benchShape{
		{name: "mlp/fc1", transB: true, m: 128, n: 256, k: 784},
		{name: "mlp/fc2", transB: true, m: 128, n: 256, k: 256},
		{name: "mlp/fc2.dx", m: 128, n: 256, k: 256},
		{name: "mlp/fc1.dw", transA: true, m: 256, n: 784, k: 128},
		{name: "mlp/lora.xa", transB: true, m: 128, n: 16, k: 784},
		{name: "mlp/lora.b", transB: true, m: 128, n: 256, k: 16},
		{name: "tf/qkv", transB: true, m: 1024, n: 128, k: 128},
		{name: "tf/mlp.up", transB: true, m: 1024, n: 512, k: 128},
		{name: "tf/mlp.down", transB: true, m: 1024, n: 128, k: 512},
		{name: "tf/attn.scores", transB: true, m: 64, n: 64, k: 32},
	}
}
