# cmake -DINPUT=file -DOUTPUT=file.cpp -DNAME=symbol -DNAMESPACE=ns -P embed_text.cmake
# Writes a C++ source defining `extern const std::string_view NAME` holding the
# text of INPUT, so an asset is edited as itself and built into the binary.
file(READ "${INPUT}" text)
set(delimiter "fxd_asset")
string(FIND "${text}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )${delimiter}\"")
endif()
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} at build time; edit that file instead.\n"
  "#include <string_view>\n"
  "namespace ${NAMESPACE} {\n"
  "extern const std::string_view ${NAME};\n"
  "const std::string_view ${NAME} = R\"${delimiter}(${text})${delimiter}\";\n"
  "}\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
