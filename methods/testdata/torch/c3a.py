"""C3A (Chen et al. 2024) as HF PEFT computes it (peft/tuners/c3a/layer.py
and utils.py): kernel (out/b)×(in/b)×b; the layer adds the block circular
convolution of x with the kernel, fft(einsum(ifft(x blocks), fft(kernel))).real,
divided by x.size(-1), to the base output. block_size 0 means the gcd of all
targeted layers' sizes (peftbench's default, HF's advice). The initial kernel
(xavier_uniform, kaiming_uniform or gaussian) comes from the Go side;
init_weights "zeros" (HF's True) starts it at 0.

The gradient is torch autograd's through HF's forward formula, not HF's
BlockCircularConvolution.backward: that hand-written backward returns the
right kernel gradient but a wrong input gradient for b > 2,
fft(einsum(fft(dy), ifft(w))).real = Σ_u dy_u·w[(t+u) mod b] where the
derivative of y_u = Σ_s w_s·x[(u+s) mod b] is Σ_u dy_u·w[(t−u) mod b]
(check_hf_backward below shows it; torch.autograd.gradcheck fails on it). It
matters whenever a C3A layer's input depends on trainable parameters, as
fc2's does here. peftbench's C3A computes the exact gradient."""
import math

import torch
from torch.fft import fft, ifft


def block_circular_convolution(x, w):
    _, n, b = w.shape
    x = x.reshape(*x.shape[:-1], n, b)
    x = torch.einsum("...nb,mnb->...mb", ifft(x), fft(w))
    x = fft(x).real
    return x.reshape(*x.shape[:-2], -1)


def hf_backward(x, w, grad_output):
    """HF PEFT's BlockCircularConvolution.backward, verbatim in effect."""
    m, n, b = w.shape
    x = x.reshape(*x.shape[:-1], n, b)
    grad_output = grad_output.reshape(*grad_output.shape[:-1], m, b)
    grad_output_fft = fft(grad_output)
    x_grad = fft(torch.einsum("...mb,mnb->...nb", grad_output_fft, ifft(w))).real
    w_grad = fft(torch.einsum("...mb,...nb->mnb", grad_output_fft, ifft(x))).real
    return x_grad.reshape(*x_grad.shape[:-2], -1), w_grad


def check_hf_backward():
    """Max |HF − autograd| of the input and kernel gradients on a random case."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(2, 2, 4, dtype=torch.float64, generator=g, requires_grad=True)
    dy = torch.randn(3, 8, dtype=torch.float64, generator=g)
    ax, aw = torch.autograd.grad((block_circular_convolution(x, w) * dy).sum(), (x, w))
    hx, hw = hf_backward(x.detach(), w.detach(), dy)
    return (hx - ax).abs().max().item(), (hw - aw).abs().max().item()


def build(o, layers, case, lib):
    b = o["block_size"]
    if b == 0:
        for L in layers:
            b = math.gcd(math.gcd(b, L["out"]), L["in"])
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, bias = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, bias)
        if o["init_weights"] == "zeros":
            k = torch.zeros(m // b, n // b, b)
        else:
            k = lib.tensor(L["init"]["kernel"], m // b, n // b, b)
        k = lay.add(k)
        lay.forward = lambda h, W=W, bias=bias, k=k: (
            h @ W.T + bias + block_circular_convolution(h, k) / h.size(-1))
        out.append(lay)
    return out


if __name__ == "__main__":
    print("HF backward minus autograd: input %.3g, kernel %.3g" % check_hf_backward())
