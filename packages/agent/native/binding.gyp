{
  "targets": [
    {
      "target_name": "coffre_native",
      "sources": ["coffre_native.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
