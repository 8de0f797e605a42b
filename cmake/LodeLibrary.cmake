# lode_shared_library(TARGET EXPORT_NAME SOURCES...) — one of lode's shared libraries:
# lode::EXPORT_NAME alias, VERSION/SOVERSION (MAJOR.MINOR while the major version is 0: a
# 0.x minor release may change the ABI; MAJOR from 1.0 on), and the flags that keep a shared library as
# fast as a static one: -fno-semantic-interposition and -Bsymbolic-functions keep calls
# inside the library direct (no PLT); -ftls-model=initial-exec makes the thread-local
# lock-step state (lode/real.hpp) cheap to reach (the general-dynamic model calls
# __tls_get_addr: lv_gold/lockstep:1 was 28 % slower). See BENCHMARKS.md.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(LODE_SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
else()
  set(LODE_SOVERSION ${PROJECT_VERSION_MAJOR})
endif()
function(lode_shared_library target export_name)
  add_library(${target} SHARED ${ARGN})
  add_library(lode::${export_name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES
    EXPORT_NAME ${export_name}
    VERSION ${PROJECT_VERSION}
    SOVERSION ${LODE_SOVERSION})
  target_compile_options(${target} PRIVATE -fno-semantic-interposition -ftls-model=initial-exec)
  target_link_options(${target} PRIVATE LINKER:-Bsymbolic-functions)
endfunction()
