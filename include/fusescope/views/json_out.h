// JSON text of a view's output. Names are untrusted (text_escape.h): a file name or a
// comm may hold bytes that are not UTF-8, on which nlohmann's dump() throws; they
// become U+FFFD instead. Control bytes are escaped by JSON itself (\u001b).
#pragma once

#include <string>

namespace fusescope {

template <class Json> std::string json_text(const Json &j, int indent = -1) {
    return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

} // namespace fusescope
