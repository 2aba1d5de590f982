"""Shared building blocks for the ECG-IMN family (IMN, IMN-direct, the 2-D CNN baseline).

Internal layout
---------------
Inside these models an ECG feature map is ``(batch, lead, time, channel)``: the lead axis is
next to the batch axis so that folding ``batch x lead`` into one axis is a free reshape. Public
model boundaries stay channels-last ``(batch, time, lead)``; the models transpose once at
entry and exit.

How the 3 x k "lead-neighbourhood" convolution is computed
-----------------------------------------------------------
The paper convolves the ECG as a one-channel 12 x L image with a 3 (leads) x k (time)
kernel and 'same' padding. The same linear map can be computed three ways (all in this
module, all tested against each other):

* ``conv2d``: XLA's 2-D convolution over (lead, time).
* ``stacked``: a 1-D convolution over time applied to every ``(sample, lead)`` row whose
  input channels are the lead's own channels and those of its two neighbours (zero rows
  beyond the first and last lead = 'same' padding over leads). Same kernel entries,
  ``k * 3 * C_in * C_out``, rearranged (:func:`kernel_2d_to_1d`)::

      kernel_1d[dt, n * C_in + c, o] == kernel_2d[n, dt, c, o]
      (n = 0, 1, 2 <-> lead - 1, lead, lead + 1)

* ``hybrid``: ``conv2d`` forwards and for the input gradient, ``stacked`` for the kernel
  gradient (a custom JVP rule, so forward- and reverse-mode autodiff both work), with the
  stack built channels-major (:func:`stack_lead_neighbours_channels_major`), the layout the
  kernel gradient is computed in, so XLA inserts no layout copy of it.

Measured on the 2-core CPU (batch 32, 100 Hz; see ``benchmarks/bench_imn_step.py``): XLA's
2-D convolution is as fast as the stacked 1-D one forwards and for the input gradient, but
its kernel gradient is 2-3x slower for a 3 x 15 kernel; the stacked form pays for writing
a 3x larger input, which dominates for the small 3 x 3 decoder convolutions. Hence
``impl="auto"``: hybrid for long time kernels, conv2d for 3 x 3.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from imn.models import ops

# PyTorch's BatchNorm momentum 0.1 (the paper's code) is Flax's momentum 0.9.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

# How parameters are initialised (``init=`` of every layer here and of the models built on
# them). "torch": PyTorch's defaults, as in the paper's code (Conv2d and Linear kernels and
# biases uniform within +-1/sqrt(fan_in), fan_in = C_in x kernel_h x kernel_w; BatchNorm
# scale 1, shift 0). "flax": this codebase's earlier default (LeCun-normal kernels, variance
# 1/fan_in, i.e. 3x the PyTorch variance, and zero biases), kept for the trainability study.
INIT_SCHEMES = ("torch", "flax")


def check_init(init: str) -> None:
    if init not in INIT_SCHEMES:
        raise ValueError(f"init must be one of {INIT_SCHEMES}, got {init!r}")


def torch_default_kernel_init() -> nnx.Initializer:
    """PyTorch's ``kaiming_uniform_(a=sqrt(5))`` for Conv/Linear weights: uniform within
    +-1/sqrt(fan_in), variance 1/(3 fan_in).

    Flax's fan-in of a kernel ``(..., C_in, C_out)`` is ``C_in`` times the product of the
    leading (receptive-field) axes, the same number PyTorch computes from ``(C_out, C_in, kh, kw)``.
    """
    return nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_default_bias_init(fan_in: int) -> nnx.Initializer:
    """PyTorch's default Conv/Linear bias: uniform within +-1/sqrt(fan_in) of the layer's
    kernel (the bias shape alone does not carry the fan-in, hence the argument)."""
    if fan_in <= 0:
        raise ValueError(f"fan_in must be positive, got {fan_in}")
    bound = 1.0 / float(fan_in) ** 0.5

    def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def kernel_initializer(init: str) -> nnx.Initializer:
    """The kernel initialiser of scheme ``init`` (see :data:`INIT_SCHEMES`)."""
    check_init(init)
    return torch_default_kernel_init() if init == "torch" else nnx.initializers.lecun_normal()


def bias_initializer(init: str, fan_in: int) -> nnx.Initializer:
    """The bias initialiser of scheme ``init`` for a layer with ``fan_in`` inputs per output."""
    check_init(init)
    return torch_default_bias_init(fan_in) if init == "torch" else nnx.initializers.zeros_init()


def dense(in_features: int, out_features: int, *, init: str = "torch",
          param_dtype: jnp.dtype = jnp.float32, rngs: nnx.Rngs) -> nnx.Linear:
    """``nnx.Linear`` initialised by scheme ``init`` (PyTorch's ``nn.Linear`` for "torch")."""
    return nnx.Linear(
        in_features, out_features, kernel_init=kernel_initializer(init),
        bias_init=bias_initializer(init, in_features), param_dtype=param_dtype, rngs=rngs,
    )


def stack_lead_neighbours(x: jax.Array) -> jax.Array:
    """Stacks each lead's two neighbours into the channel axis.

    Args:
      x: ``(B, leads, T, C)``.
    Returns:
      ``(B * leads, T, 3 * C)`` where channels ``[0:C]`` are lead - 1, ``[C:2C]`` the lead
      itself and ``[2C:3C]`` lead + 1; missing neighbours (beyond the first and last lead)
      are zeros.
    """
    batch, leads, time, channels = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (0, 0), (0, 0)))
    stacked = jnp.concatenate(
        [padded[:, :-2], padded[:, 1:-1], padded[:, 2:]], axis=-1
    )
    return stacked.reshape(batch * leads, time, 3 * channels)


def stack_lead_neighbours_channels_major(x: jax.Array) -> jax.Array:
    """:func:`stack_lead_neighbours` laid out channels-major, rows last.

    Args:
      x: ``(B, leads, T, C)``.
    Returns:
      ``(3 * C, T, B * leads)``, equal to ``stack_lead_neighbours(x).transpose(2, 1, 0)``.
      This is the layout in which XLA's CPU convolution computes a kernel gradient (the
      rows are what it contracts); building it from ``x`` directly, after one plain
      transpose of ``x``, costs about a third of the strided gather XLA fuses into the
      layout change when it is handed the rows-first stack.
    """
    batch, leads, time, channels = x.shape
    # (C, T, B, leads): neighbours are now shifts along the last axis.
    padded = jnp.pad(x.transpose(3, 2, 0, 1), ((0, 0), (0, 0), (0, 0), (1, 1)))
    stacked = jnp.stack([padded[..., :-2], padded[..., 1:-1], padded[..., 2:]], axis=0)
    return stacked.reshape(3 * channels, time, batch * leads)


_DIMS_2D = ("NHWC", "HWIO", "NHWC")  # (batch, lead, time, channel), kernel (lead, time, in, out)
_DIMS_1D = ("NWC", "WIO", "NWC")


def kernel_2d_to_1d(kernel: jax.Array) -> jax.Array:
    """``(3, kt, C_in, C_out)`` 2-D kernel -> ``(kt, 3 * C_in, C_out)`` kernel of the 1-D
    convolution over :func:`stack_lead_neighbours` rows."""
    three, kt, c_in, c_out = kernel.shape
    if three != 3:
        raise ValueError(f"expected a kernel spanning 3 leads, got shape {kernel.shape}")
    return kernel.transpose(1, 0, 2, 3).reshape(kt, 3 * c_in, c_out)


def kernel_1d_to_2d(kernel: jax.Array) -> jax.Array:
    """Inverse of :func:`kernel_2d_to_1d`: ``(kt, 3 * C_in, C_out) -> (3, kt, C_in, C_out)``."""
    kt, three_c_in, c_out = kernel.shape
    return kernel.reshape(kt, 3, three_c_in // 3, c_out).transpose(1, 0, 2, 3)


def conv_2d(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Plain 'same' 2-D convolution over (lead, time).

    ``x (B, leads, T, C_in)``, ``kernel (3, kt, C_in, C_out)`` -> ``(B, leads, T, C_out)``.
    """
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=_DIMS_2D)


def conv_stacked(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """The same map as :func:`conv_2d`, computed as a 1-D convolution over
    ``batch x lead`` rows whose channels are the lead and its two neighbours."""
    batch, leads, time, _ = x.shape
    y = jax.lax.conv_general_dilated(
        stack_lead_neighbours(x), kernel_2d_to_1d(kernel), (1,), "SAME", dimension_numbers=_DIMS_1D
    )
    return y.reshape(batch, leads, time, kernel.shape[-1])


def conv_stacked_channels_major(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """:func:`conv_stacked` reading the stack from :func:`stack_lead_neighbours_channels_major`.

    The forward is only used in forward-mode autodiff; what matters is its transpose in
    ``kernel`` (reverse mode): there the stack is already in the layout XLA's CPU kernel
    gradient wants (rows as the contracted feature axis, last), so no layout copy of the
    3x-sized stack is inserted.

    ``x (B, leads, T, C_in)``, ``kernel (3, kt, C_in, C_out)`` -> ``(B, leads, T, C_out)``.
    """
    batch, leads, time, _ = x.shape
    y = jax.lax.conv_general_dilated(
        stack_lead_neighbours_channels_major(x), kernel_2d_to_1d(kernel), (1,), "SAME",
        dimension_numbers=("CWN", "WIO", "NWC"),
    )
    return y.reshape(batch, leads, time, kernel.shape[-1])


@jax.custom_jvp
def conv_hybrid(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """:func:`conv_2d` whose kernel derivative is computed the :func:`conv_stacked` way.

    XLA's CPU 2-D convolution is fast forwards and for the input gradient, but its
    kernel gradient ("backward filter") is several times slower for a 3 x 15 kernel than
    the equivalent 1-D kernel gradient over stacked lead neighbours. The rule is a custom
    JVP (not a VJP) so forward mode still works; reverse mode transposes it, which gives
    the 2-D input gradient and the stacked kernel gradient.
    """
    return conv_2d(x, kernel)


@conv_hybrid.defjvp
def _conv_hybrid_jvp(primals, tangents):
    x, kernel = primals
    x_dot, kernel_dot = tangents
    # Both terms are linear in the tangents; the stacked term's transpose in kernel_dot is
    # the fast 1-D kernel gradient.
    return conv_2d(x, kernel), conv_2d(x_dot, kernel) + conv_stacked_channels_major(x, kernel_dot)


CONV_IMPLS = {"conv2d": conv_2d, "stacked": conv_stacked, "hybrid": conv_hybrid}


def resolve_conv_impl(impl: str, time_kernel: int) -> str:
    """``"auto"`` -> ``"hybrid"`` for long time kernels on CPU, else ``"conv2d"``.

    Resolved when the model is traced, from ``jax.default_backend()``: the hybrid exists
    because of XLA's CPU kernel-gradient; on GPU/TPU the vendor 2-D convolution is used.
    """
    if impl != "auto":
        return impl
    return "hybrid" if time_kernel > 3 and jax.default_backend() == "cpu" else "conv2d"


def polyphase_upsample_kernel(kernel: jax.Array) -> jax.Array:
    """Kernel that computes ``conv(upsample_time(x), kernel)`` directly on ``x``.

    With nearest x2 upsampling ``u[2i] = u[2i + 1] = x[i]`` and time taps ``(a, b, c)`` at
    offsets (-1, 0, +1)::

        y[2i]     = a x[i - 1] + (b + c) x[i]
        y[2i + 1] = (a + b) x[i] + c x[i + 1]

    so a 3-tap convolution on ``x`` with ``2 * C_out`` outputs (even phase first) gives both
    phases, and reshaping ``(T, 2, C_out) -> (2T, C_out)`` interleaves them. This skips
    materialising the upsampled input (memory traffic dominates these small convs on CPU).

    ``(3, 3, C_in, C_out) -> (3, 3, C_in, 2 * C_out)``.
    """
    if kernel.shape[1] != 3:
        raise ValueError(f"polyphase upsampling is written for 3 time taps, got {kernel.shape}")
    a, b, c = kernel[:, 0], kernel[:, 1], kernel[:, 2]
    zero = jnp.zeros_like(a)
    even = jnp.stack([a, b + c, zero], axis=1)
    odd = jnp.stack([zero, a + b, c], axis=1)
    return jnp.concatenate([even, odd], axis=-1)


class LeadConv(nnx.Module):
    """A 3 (leads) x ``time_kernel`` convolution with 'same' (zero) padding, stride 1.

    The kernel is stored like ``nnx.Conv``'s, ``(3, time_kernel, C_in, C_out)`` (lead, time,
    in, out). ``impl`` picks how it is computed (all give the same function; see the module
    docstring): ``"conv2d"``, ``"stacked"``, ``"hybrid"``, or ``"auto"``
    (:func:`resolve_conv_impl`: the fastest on CPU in our measurements).

    With ``upsample_input=True`` the layer computes ``conv(upsample_time(x))`` (nearest x2
    over time) without materialising the upsampled input (:func:`polyphase_upsample_kernel`).

    Args:
      in_features: ``C_in``.
      out_features: ``C_out``.
      time_kernel: odd kernel length along time (15 in the encoder, 3 in the decoder).
      use_bias: add a learned bias per output channel.
      dtype: computation dtype (e.g. ``jnp.bfloat16``); ``None`` follows the kernel's dtype.
      param_dtype: storage dtype of the kernel and bias.
      init: parameter initialisation, ``"torch"`` (PyTorch's default, the paper's) or
        ``"flax"`` (LeCun normal, zero bias); see :data:`INIT_SCHEMES`.
      init_scale: multiplies the initial kernel and bias (ECG-IMN's ``weight_init_scale``
        sets it for the decoder layer that writes ``W``, so that ``W`` scales exactly);
        0 starts the layer at zero.
    Shapes:
      ``(B, leads, T, C_in) -> (B, leads, T, C_out)``, or ``(B, leads, 2T, C_out)`` with
      ``upsample_input``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        time_kernel: int,
        *,
        use_bias: bool = False,
        upsample_input: bool = False,
        impl: str = "auto",
        dtype: jnp.dtype | None = None,
        param_dtype: jnp.dtype = jnp.float32,
        init: str = "torch",
        init_scale: float = 1.0,
        rngs: nnx.Rngs,
    ):
        check_init(init)
        if time_kernel % 2 != 1:
            # An even kernel has no centred 'same' padding; the paper uses 15 and 3.
            raise ValueError(f"time_kernel must be odd, got {time_kernel}")
        if impl != "auto" and impl not in CONV_IMPLS:
            raise ValueError(f"impl must be 'auto' or one of {sorted(CONV_IMPLS)}, got {impl!r}")
        if upsample_input and time_kernel != 3:
            raise ValueError("upsample_input is implemented for time_kernel=3 only")
        self.in_features = in_features
        self.out_features = out_features
        self.time_kernel = time_kernel
        self.upsample_input = upsample_input
        self.impl = impl
        self.dtype = dtype
        # The fan-in is 3 * time_kernel * C_in, as for PyTorch's Conv2d(C_in, C_out, (3, kt)).
        fan_in = 3 * time_kernel * in_features
        kernel = kernel_initializer(init)(
            rngs.params(), (3, time_kernel, in_features, out_features), param_dtype
        )
        self.kernel = nnx.Param(kernel if init_scale == 1.0 else kernel * init_scale)
        if use_bias:
            bias = bias_initializer(init, fan_in)(rngs.params(), (out_features,), param_dtype)
            self.bias = nnx.Param(bias if init_scale == 1.0 else bias * init_scale)
        else:
            self.bias = nnx.data(None)

    def __call__(self, x: jax.Array) -> jax.Array:
        batch, leads, time, channels = x.shape
        if channels != self.in_features:
            raise ValueError(
                f"LeadConv expects {self.in_features} input channels, got shape {x.shape}"
            )
        # Without an explicit dtype the kernel's decides: the training step's mixed
        # precision casts the parameters to bfloat16 and keeps the ECG in float32 (for the
        # float32 read-out), so the convolutions follow the parameters, not the input.
        kernel = self.kernel[...]
        dtype = self.dtype or kernel.dtype
        kernel = kernel.astype(dtype)
        conv = CONV_IMPLS[resolve_conv_impl(self.impl, self.time_kernel)]
        if self.upsample_input:
            y = conv(x.astype(dtype), polyphase_upsample_kernel(kernel))
            y = y.reshape(batch, leads, 2 * time, self.out_features)
        else:
            y = conv(x.astype(dtype), kernel)
        if self.bias is not None:
            y = y + self.bias[...].astype(dtype)
        return y


class ConvBlock(nnx.Module):
    """LeadConv (no bias) -> BatchNorm -> exact GELU.

    ``upsample_input``, ``impl`` and ``init`` are passed to :class:`LeadConv` (BatchNorm
    starts at scale 1, shift 0 under either scheme, as in PyTorch).
    Shapes: ``(B, leads, T, C_in) -> (B, leads, T, C_out)`` (``2T`` with ``upsample_input``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        time_kernel: int,
        *,
        upsample_input: bool = False,
        impl: str = "auto",
        dtype: jnp.dtype | None = None,
        param_dtype: jnp.dtype = jnp.float32,
        init: str = "torch",
        rngs: nnx.Rngs,
    ):
        self.conv = LeadConv(
            in_features,
            out_features,
            time_kernel,
            use_bias=False,
            upsample_input=upsample_input,
            impl=impl,
            init=init,
            dtype=dtype,
            param_dtype=param_dtype,
            rngs=rngs,
        )
        self.norm = nnx.BatchNorm(
            out_features,
            momentum=BN_MOMENTUM,
            epsilon=BN_EPSILON,
            dtype=dtype,
            param_dtype=param_dtype,
            rngs=rngs,
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        return ops.gelu(self.norm(self.conv(x)))


def max_pool_time(x: jax.Array) -> jax.Array:
    """Max-pool (1, 2): halves the time axis of ``(B, leads, T, C)``; T must be even.

    :func:`imn.models.ops.max_pool` (a fused backward pass; ties go to the first sample,
    as in PyTorch's ``MaxPool2d``).
    """
    time = x.shape[2]
    if time % 2:
        raise ValueError(f"max_pool_time needs an even time length, got {time}")
    return ops.max_pool(x, 2, 2, 2)


def upsample_time(x: jax.Array) -> jax.Array:
    """Nearest-neighbour x2 upsampling over time: ``(B, leads, T, C) -> (B, leads, 2T, C)``."""
    return jnp.repeat(x, 2, axis=2)


class Encoder(nnx.Module):
    """The IMN encoder: the ECG as a one-channel 12 x L image, three ConvBlocks with kernel
    3 x ``kernel[1]``, max-pool (1, 2) after blocks 2 and 3 only.

    Args:
      widths: output channels of the three blocks (16, 32, 64 in the paper).
      kernel: (lead, time) kernel size; the lead extent must be 3 (see :class:`LeadConv`).
      init: parameter initialisation scheme (:data:`INIT_SCHEMES`).
    Shapes:
      ``(B, leads, L, 1) -> Z (B, leads, L / 4, widths[-1])``; L must be divisible by 4.
    """

    def __init__(
        self,
        *,
        widths: tuple[int, ...] = (16, 32, 64),
        kernel: tuple[int, int] = (3, 15),
        impl: str = "auto",
        dtype: jnp.dtype | None = None,
        param_dtype: jnp.dtype = jnp.float32,
        init: str = "torch",
        rngs: nnx.Rngs,
    ):
        if len(widths) != 3:
            raise ValueError(f"the IMN encoder has three blocks, got widths={widths}")
        if kernel[0] != 3:
            raise ValueError(f"the lead extent of the kernel must be 3, got kernel={kernel}")
        self.widths = tuple(widths)
        ins = (1,) + self.widths[:-1]
        self.blocks = nnx.List(
            [
                ConvBlock(
                    c_in, c_out, kernel[1], impl=impl, dtype=dtype, param_dtype=param_dtype,
                    init=init, rngs=rngs,
                )
                for c_in, c_out in zip(ins, self.widths)
            ]
        )

    @property
    def out_features(self) -> int:
        return self.widths[-1]

    def __call__(self, x: jax.Array) -> jax.Array:
        if x.shape[2] % 4:
            raise ValueError(
                f"IMN encoder needs a length divisible by 4 (two (1, 2) poolings), got {x.shape[2]}"
            )
        x = self.blocks[0](x)
        x = max_pool_time(self.blocks[1](x))
        return max_pool_time(self.blocks[2](x))


def ecg_to_image(x: jax.Array) -> jax.Array:
    """Public ``(B, L, leads)`` ECG to the internal one-channel image ``(B, leads, L, 1)``."""
    if x.ndim != 3:
        raise ValueError(f"expected an ECG batch of shape (batch, time, lead), got {x.shape}")
    return jnp.swapaxes(x, 1, 2)[..., None]
