# The Debian package: install() rules and CPack settings. `cpack -G DEB` in a build directory (after the build)
# writes fleetprobe_<version>-1_<arch>.deb there; docs/packaging.md says what it installs and why.
#
# The binary, man page and documentation are relative to the prefix, which CPack sets to /usr. The files that
# only make sense at one place on a Debian system (/etc, the systemd units, both named in the maintainer
# scripts and the units) use absolute paths, so a plain `cmake --install` writes those there too: install
# from the package instead.

include(GNUInstallDirs)

set(FLEETPROBE_DEB_DIR ${CMAKE_CURRENT_LIST_DIR})

# Debian policy wants man pages gzipped with -9n (-n: no name or time stamp, so the file is reproducible).
set(FLEETPROBE_MANPAGE_GZ ${CMAKE_BINARY_DIR}/fleetprobe.8.gz)
add_custom_command(OUTPUT ${FLEETPROBE_MANPAGE_GZ}
  COMMAND sh -c "gzip -9n -c \"$1\" > \"$2\"" sh ${CMAKE_SOURCE_DIR}/docs/fleetprobe.8 ${FLEETPROBE_MANPAGE_GZ}
  DEPENDS ${CMAKE_SOURCE_DIR}/docs/fleetprobe.8
  VERBATIM)
add_custom_target(fleetprobe_manpage ALL DEPENDS ${FLEETPROBE_MANPAGE_GZ})

install(TARGETS fleetprobe RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${FLEETPROBE_MANPAGE_GZ} DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

file(GLOB FLEETPROBE_EXAMPLE_CONFIGS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/configs/*.json)
install(FILES ${FLEETPROBE_EXAMPLE_CONFIGS} DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
file(GLOB FLEETPROBE_DOCS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/*.md)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${FLEETPROBE_DOCS} DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Conffiles (listed in scripts/deb/conffiles). The configs directory ships with a README only: a packaged
# example config there would be probed and pushed as soon as a unit is enabled.
install(FILES ${FLEETPROBE_DEB_DIR}/fleetprobe.default DESTINATION /etc/default RENAME fleetprobe)
install(FILES ${FLEETPROBE_DEB_DIR}/configs-README DESTINATION /etc/fleetprobe/configs RENAME README)

# /lib, not /usr/lib: bookworm's systemd and debhelper still use /lib/systemd/system.
install(FILES
  ${FLEETPROBE_DEB_DIR}/fleetprobe.service
  ${FLEETPROBE_DEB_DIR}/fleetprobe-once.service
  ${FLEETPROBE_DEB_DIR}/fleetprobe-once.timer
  DESTINATION /lib/systemd/system)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME fleetprobe)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "fleetprobe maintainers <maintainers@users.noreply.b-seed-45617019.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "probes IoT device fleets (ping, ports) and pushes to a Pushgateway")
# CPack puts the summary above this as the synopsis line.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "fleetprobe pings fleets of intermittently connected devices (smart meters,
dataloggers, trackers on GPRS/3G links) and opens their ports, all devices of a
class at once, and pushes the results to a Prometheus Pushgateway. It runs
PingExporter's config files unchanged.
.
The package runs it as the unprivileged user fleetprobe, from a systemd service
(loop mode) or a timer (one cycle a minute); ping works without root through
the cap_net_raw file capability.")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# The runtime libraries come from dpkg-shlibdeps (dpkg-dev) on the binary; these are the maintainer scripts'
# tools, and tzdata for conf.timezone (the zone files are read at run time).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, libcap2-bin, tzdata")
# RelWithDebInfo carries about 20 MB of debug information.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${FLEETPROBE_DEB_DIR}/postinst
  ${FLEETPROBE_DEB_DIR}/prerm
  ${FLEETPROBE_DEB_DIR}/postrm
  ${FLEETPROBE_DEB_DIR}/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
