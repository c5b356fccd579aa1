# Install layout beyond the daemon binary, and the Debian package.
#
#   cmake --install BUILD --prefix P  ->  P/bin/fxd, P/bin/fxc, P/etc/fxd/fxd.json,
#                                          P/lib/systemd/system/fxd.{service,socket},
#                                          P/share/doc/fxd/ (with copyright, changelog.gz),
#                                          P/share/man/man{1,5,8}/ (cmake/man.cmake)
#   configured with -DCMAKE_INSTALL_PREFIX=/usr (what the .deb is built from):
#                                          /usr/bin, /etc/fxd, /lib/systemd/system, /usr/share/doc/fxd
#   cd BUILD && cpack                  ->  fxd_VERSION_amd64.deb
#
# Included from the top-level CMakeLists.txt after every subdirectory. bin/fxd
# and bin/fxc are installed next to their targets (daemon/, client/).

# Debian keeps configuration in /etc and units in /lib/systemd/system even when
# the prefix is /usr; any other prefix gets them under itself.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(FXD_INSTALL_CONFDIR /etc/fxd)
  set(FXD_INSTALL_UNITDIR /lib/systemd/system)
else()
  set(FXD_INSTALL_CONFDIR ${CMAKE_INSTALL_SYSCONFDIR}/fxd)
  set(FXD_INSTALL_UNITDIR lib/systemd/system)
endif()

install(FILES ${PROJECT_SOURCE_DIR}/config/fxd.production.json DESTINATION ${FXD_INSTALL_CONFDIR} RENAME fxd.json)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/fxd.service ${PROJECT_SOURCE_DIR}/systemd/fxd.socket
        DESTINATION ${FXD_INSTALL_UNITDIR})
install(FILES ${PROJECT_SOURCE_DIR}/config/fxd.json DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
if(EXISTS ${PROJECT_SOURCE_DIR}/docs/deployment.md)
  install(FILES ${PROJECT_SOURCE_DIR}/docs/deployment.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
endif()

# What Debian policy wants in every package's doc folder: the copyright file
# and, for a native package, changelog.gz (gzip -9n: no name or time stamp).
install(FILES ${PROJECT_SOURCE_DIR}/cmake/deb/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
find_program(GZIP gzip REQUIRED)
add_custom_command(
  OUTPUT ${PROJECT_BINARY_DIR}/deb/changelog.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/deb
  COMMAND sh -c "'${GZIP}' -9n < '${PROJECT_SOURCE_DIR}/cmake/deb/changelog' > '${PROJECT_BINARY_DIR}/deb/changelog.gz'"
  DEPENDS ${PROJECT_SOURCE_DIR}/cmake/deb/changelog
  VERBATIM)
add_custom_target(deb_changelog ALL DEPENDS ${PROJECT_BINARY_DIR}/deb/changelog.gz)
install(FILES ${PROJECT_BINARY_DIR}/deb/changelog.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The Debian package: cpack -G DEB (the default generator here).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME fxd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# Debian's synopsis starts without an article (lintian: description-synopsis-starts-with-article).
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "small, fast network daemon: framed TCP and UDP echo, files and accounts")
set(CPACK_PACKAGE_DESCRIPTION "fxd serves framed requests over TCP and UDP: echo, ping, accounts and
files. The package installs the daemon, the fxc client, a hardened systemd
service (readiness, watchdog, reload) and an optional socket unit.")
# A host lintian accepts (localhost is bogus-mail-host); .invalid says there is no mailbox yet.
set(CPACK_PACKAGE_CONTACT "fxd maintainers <fxd@maintainers.invalid>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # fxd_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Runtime Depends from the libraries the binaries really link (dpkg-shlibdeps).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# fxd.service's ExecReload= runs /bin/kill, which minimal systems lack.
set(CPACK_DEBIAN_PACKAGE_DEPENDS procps)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/cmake/deb/conffiles
    ${PROJECT_SOURCE_DIR}/cmake/deb/postinst
    ${PROJECT_SOURCE_DIR}/cmake/deb/prerm
    ${PROJECT_SOURCE_DIR}/cmake/deb/postrm)
# A package built from a build not configured for /usr would put /etc in the
# wrong place: refuse it before it is written.
set(CPACK_PRE_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/cmake/deb/check-layout.cmake)
include(CPack)
