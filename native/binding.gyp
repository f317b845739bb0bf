{
  # The addon is built for baseline x86-64 (or the host's baseline elsewhere); only the
  # kernel library below gets wider instruction sets, and dispatch.cc picks it at run time.
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
        "src/kernels_scalar.cc",
        "src/linear.cc",
        "src/mapping.cc",
        "src/matrix_io.cc",
        "src/ops.cc",
        "src/scratch.cc",
        "src/thread_pool.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "libraries": ["-lpthread"],
      "conditions": [
        ["dsv4_x86==1", {
          "dependencies": ["dsv4_kernels_avx2"],
          "defines": ["DSV4_HAVE_AVX2"]
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
        }
      ]
    }]
  ]
}
