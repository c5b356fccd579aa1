# CPack pre-build check: the .deb must carry /etc/fxd/fxd.json and the units in
# /lib/systemd/system, which only a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr lays out.
foreach(path etc/fxd/fxd.json lib/systemd/system/fxd.service usr/bin/fxd)
  file(GLOB found "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/${path}" "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/*/${path}")
  if(NOT found)
    message(FATAL_ERROR "the package would lack /${path}: configure the build with -DCMAKE_INSTALL_PREFIX=/usr before running cpack")
  endif()
endforeach()
