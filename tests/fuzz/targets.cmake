# The fuzz targets: one per tests/fuzz/fuzz_<target>.c, each with a seed
# corpus in corpus/<target>/. Included by tests/fuzz/CMakeLists.txt (the
# libFuzzer builds) and tests/CMakeLists.txt (the corpus replays).
file(GLOB gm_fuzz_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/fuzz_*.c)
set(GM_FUZZ_TARGETS "")
foreach(src ${gm_fuzz_sources})
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" name ${name})
  list(APPEND GM_FUZZ_TARGETS ${name})
endforeach()
