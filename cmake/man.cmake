# Man pages: fxd(8), fxc(1) and fxd.json(5), each from one scdoc source in
# docs/man/, built with the default target, gzipped (as Debian installs them)
# and installed under share/man by `cmake --install` and the .deb.
find_program(SCDOC scdoc)
find_program(GZIP gzip)
if(NOT SCDOC OR NOT GZIP)
  message(WARNING "scdoc or gzip not found: the man pages are not built (apt install scdoc)")
  return()
endif()

set(fxd_man_pages fxd.8 fxc.1 fxd.json.5)
set(fxd_man_outputs)
foreach(page IN LISTS fxd_man_pages)
  set(source ${PROJECT_SOURCE_DIR}/docs/man/${page}.scd)
  set(output ${PROJECT_BINARY_DIR}/man/${page}.gz)
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
    # -n: no name or time stamp in the gzip header, so the package is reproducible.
    COMMAND sh -c "'${SCDOC}' < '${source}' | '${GZIP}' -9n > '${output}'"
    DEPENDS ${source}
    COMMENT "Building the man page ${page}"
    VERBATIM)
  list(APPEND fxd_man_outputs ${output})
  string(REGEX MATCH "[0-9]$" section ${page})
  install(FILES ${output} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(man ALL DEPENDS ${fxd_man_outputs})
