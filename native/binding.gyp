{
  # The addon is built for baseline x86-64 (or the host's baseline elsewhere); only the
  # kernel libraries below get wider instruction sets, and dispatch.cc picks one at run time.
  "variables": {
    "dsv4_x86": "<!(node -p \"['x64', 'ia32'].includes(process.arch) ? 1 : 0\")"
  },
  "target_defaults": {
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc": ["-std=c++17", "-O3", "-fPIC", "-Wall", "-Wextra", "-Wno-unused-parameter", "-ffp-contract=off"],
    "cflags!": ["-O2"],
    "cflags": ["-O3", "-fPIC"]
  },
  "targets": [
    {
      "target_name": "dsv4",
      "sources": [
        "src/addon.cc",
        "src/dispatch.cc",
        "src/greedy_head.cc",
        "src/heap_tuning.cc",
        "src/kernels_scalar.cc",
        "src/linear.cc",
        "src/mapping.cc",
        "src/prefetch.cc",
        "src/sampling.cc",
        "src/matrix_io.cc",
        "src/moe.cc",
        "src/ops.cc",
        "src/scratch.cc",
        "src/socket_options.cc",
        "src/thread_pool.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "libraries": ["-lpthread"],
      "conditions": [
        ["dsv4_x86==1", {
          "dependencies": ["dsv4_kernels_avx2", "dsv4_kernels_avx512", "dsv4_kernels_avx512bf16"],
          "defines": ["DSV4_HAVE_AVX2", "DSV4_HAVE_AVX512", "DSV4_HAVE_AVX512BF16"]
        }],
        ["target_arch=='arm64'", {
          "dependencies": ["dsv4_kernels_neon"],
          "defines": ["DSV4_HAVE_NEON"]
        }]
      ]
    }
  ],
  "conditions": [
    ["dsv4_x86==1", {
      "targets": [
        {
          "target_name": "dsv4_kernels_avx2",
          "type": "static_library",
          "sources": ["src/kernels_avx2.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c"]
        },
        {
          "target_name": "dsv4_kernels_avx512",
          "type": "static_library",
          "sources": ["src/kernels_avx512.cc"],
          "cflags_cc": ["-mavx512f", "-mavx512bw", "-mavx2", "-mfma", "-mf16c"]
        },
        {
          "target_name": "dsv4_kernels_avx512bf16",
          "type": "static_library",
          "sources": ["src/kernels_avx512bf16.cc"],
          "cflags_cc": ["-mavx512f", "-mavx512bw", "-mavx512bf16", "-mavx512vbmi", "-mavx2", "-mfma", "-mf16c"]
        }
      ]
    }],
    # target_arch: node-gyp's --arch, by default this Node's.
    ["target_arch=='arm64'", {
      "targets": [
        {
          # NEON is baseline on aarch64: no target flags. The portable kernels it includes
          # (kernels_impl.h) are partly unused here.
          "target_name": "dsv4_kernels_neon",
          "type": "static_library",
          "sources": ["src/kernels_neon.cc"],
          "cflags_cc": ["-Wno-unused-function"]
        }
      ]
    }]
  ]
}
