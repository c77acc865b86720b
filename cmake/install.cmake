# What `cmake --install` puts where, relative to the install prefix (docs/operations.md):
#
#   bin/safegated, bin/safegatectl              the daemon and the administrators' tool
#   share/safegate/make-dev-certs               development certificates (sandbox, tests)
#   share/safegate/policy/default.toml          the shipped policy
#   share/doc/safegate/operations.md            the operations guide (the unit links to it)
#   lib/systemd/system/safegated.service        the unit
#   lib/sysusers.d/safegate.conf                the `safegate` system user
#   lib/tmpfiles.d/safegate.conf                /var/lib/safegate 0700, /etc/safegate 0750
#   <sysconfdir>/safegate/examples/AREA/*.toml  example configs and registries, 0640
#
# <sysconfdir> is /etc when the prefix is /usr (a distribution-style install, as
# GNUInstallDirs does it) and <prefix>/etc otherwise. It is decided at install time, so
# `cmake --install BUILD --prefix /usr` behaves like a build configured with that prefix.
# DESTDIR is honoured everywhere (packaging, and the install test in systemd/).
#
# The unit, sysusers and tmpfiles files name absolute paths (/usr/bin/safegated,
# /etc/safegate). They are installed with those paths rewritten for the actual prefix, so an
# install under /usr/local still starts the binary it installed.

# Both programs in bin/: safegatectl finds safegated beside itself (the sandbox), and
# operators and audit officers run both.
foreach(_sg_program safegated safegatectl)
  if(TARGET ${_sg_program})
    install(TARGETS ${_sg_program} RUNTIME DESTINATION bin)
  endif()
endforeach()

install(PROGRAMS ${PROJECT_SOURCE_DIR}/certs/make-dev-certs DESTINATION share/safegate)
install(FILES ${PROJECT_SOURCE_DIR}/policy/default.toml DESTINATION share/safegate/policy)
if(EXISTS ${PROJECT_SOURCE_DIR}/docs/operations.md)
  install(FILES ${PROJECT_SOURCE_DIR}/docs/operations.md DESTINATION share/doc/safegate)
endif()

# Everything below runs at install time (the escaped \${...} are evaluated then), because
# the prefix may be changed with `cmake --install --prefix`.
install(CODE "
  set(_sg_src \"${PROJECT_SOURCE_DIR}\")
  set(_sg_work \"${PROJECT_BINARY_DIR}/install-staging\")
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(_sg_etc \"/etc/safegate\")
  else()
    set(_sg_etc \"\${CMAKE_INSTALL_PREFIX}/etc/safegate\")
  endif()

  # Configuration directory: 0750, group `safegate` on the target system (set there by
  # tmpfiles; an install cannot name a group that may not exist yet).
  file(MAKE_DIRECTORY \"\$ENV{DESTDIR}\${_sg_etc}\")
  file(CHMOD \"\$ENV{DESTDIR}\${_sg_etc}\" DIRECTORY_PERMISSIONS
       OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE)
  file(INSTALL DESTINATION \"\${_sg_etc}\" TYPE DIRECTORY
       FILES \"\${_sg_src}/config/examples\"
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
       DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
       PATTERN \".gitignore\" EXCLUDE
       PATTERN \"certs\" EXCLUDE
       PATTERN \"data\" EXCLUDE)

  # systemd files with their absolute paths made to fit the prefix.
  function(_sg_install_rewritten src dest_dir dest_name)
    file(READ \"\${src}\" text)
    string(REPLACE \"/usr/bin/safegated\" \"\${CMAKE_INSTALL_PREFIX}/bin/safegated\" text \"\${text}\")
    string(REPLACE \"/usr/share/doc/safegate\" \"\${CMAKE_INSTALL_PREFIX}/share/doc/safegate\" text \"\${text}\")
    string(REPLACE \"/etc/safegate\" \"\${_sg_etc}\" text \"\${text}\")
    get_filename_component(staging \"\${_sg_work}/\${dest_dir}\" ABSOLUTE)
    file(MAKE_DIRECTORY \"\${staging}\")
    file(WRITE \"\${staging}/\${dest_name}\" \"\${text}\")
    file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/\${dest_dir}\" TYPE FILE
         FILES \"\${staging}/\${dest_name}\"
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  endfunction()
  _sg_install_rewritten(\"\${_sg_src}/systemd/safegated.service\" lib/systemd/system safegated.service)
  _sg_install_rewritten(\"\${_sg_src}/systemd/safegate.sysusers.conf\" lib/sysusers.d safegate.conf)
  _sg_install_rewritten(\"\${_sg_src}/systemd/safegate.tmpfiles.conf\" lib/tmpfiles.d safegate.conf)
")
