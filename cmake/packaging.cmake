# What `cmake --install` puts where, and the Debian package of it (one command, in the
# build directory: `cpack -G DEB`, which writes fusescope_VERSION_ARCH.deb there).
# Binaries and man pages (src/cli, src/testfs, src/load) install themselves; these are the
# rest: the bash completion (src/cli), the Grafana dashboard and Prometheus rules, the
# exporter's systemd unit and a starting web configuration.
set(FUSESCOPE_SHARE ${CMAKE_INSTALL_DATADIR}/fusescope)
install(FILES ${PROJECT_SOURCE_DIR}/dashboards/fusescope.json
              ${PROJECT_SOURCE_DIR}/dashboards/fusescope.rules.yml
              ${PROJECT_SOURCE_DIR}/dashboards/fusescope.rules.test.yml
        DESTINATION ${FUSESCOPE_SHARE}/dashboards)
install(FILES ${PROJECT_SOURCE_DIR}/dist/web.yml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/metrics.md
              ${PROJECT_SOURCE_DIR}/docs/write-paths.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The unit in dist/ runs /usr/local/bin/fusescope (installed by hand); the installed one
# runs the binary where this installation puts it: the prefix is the one of the install
# (cpack installs with CPACK_PACKAGING_INSTALL_PREFIX, not the configured prefix), so
# the unit is written when installing.
install(CODE "
  file(READ \"${PROJECT_SOURCE_DIR}/dist/fusescope-exporter.service\" unit)
  string(REPLACE \"/usr/local/bin/fusescope\"
         \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/fusescope\" unit \"\${unit}\")
  file(WRITE \"${PROJECT_BINARY_DIR}/dist/fusescope-exporter.service\" \"\${unit}\")
")
# systemd's unit directory for packages (/lib/systemd/system on Debian 12)
set(FUSESCOPE_UNIT_DIR "/lib/systemd/system" CACHE PATH "where the exporter's unit goes")
install(FILES ${PROJECT_BINARY_DIR}/dist/fusescope-exporter.service
        DESTINATION ${FUSESCOPE_UNIT_DIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME fusescope)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "fusescope")
set(CPACK_PACKAGE_CONTACT "fusescope maintainers <fusescope@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "eBPF observability for the Linux FUSE client: IO modes, i_rwsem write locking, holders")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON) # the library packages the binaries link
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "Per inode of every FUSE mount: its IO mode, who put it in cache mode (program,\nprocess, systemd unit or container), how often direct-IO writers took the\ninode lock shared or exclusive and why, and how long they waited. Commands:\ndoctor, trace, top, export (Prometheus), diagnose, demo.")
include(CPack)
