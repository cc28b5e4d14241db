// Reading protobuf text files (proto/sieve.proto messages) for the net and solver loaders: the file's
// text, one parse whose errors name file:line:column, the field and the nearest valid name, and the
// places of the parsed fields, so that the loaders' own checks can name them too.
//
// Internal to runtime/config: the public headers (net_config.h, solver_config.h) expose no protobuf
// type. Nothing here knows what a net or a solver means.
#pragma once

#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "framework/status.h"

namespace sieve::runtime {

/// The contents of `path`. NOT_FOUND when it does not exist, INVALID_ARGUMENT when it is not a regular
/// file or cannot be read; `what` names it in messages ("net file").
StatusOr<std::string> ReadTextFile(const std::string& path, std::string_view what);

/// `path` resolved against the folder of the file `origin` names: unchanged when absolute, or when
/// origin has no folder part.
std::string ResolveAgainst(std::string_view origin, const std::string& path);

/// Where the fields of one parsed message are in the text ("net.prototxt:12:5"), from the parser's
/// location tree. A TextLocation is a cheap handle into a ParseText result; it must not outlive it.
class TextLocation {
 public:
  TextLocation(std::string_view origin, const google::protobuf::TextFormat::ParseInfoTree* tree,
               const google::protobuf::Descriptor* type);

  /// The nested message at `path`: field names separated by '.', each with an optional [index] for
  /// repeated fields ("layer[3]", "fully_connected_param.weight_filler"). A part of the path that the
  /// text does not contain leaves the location at the last part it does contain.
  TextLocation In(std::string_view path) const;
  /// "origin:line:column" of the field at `path` (see In), or of the nearest enclosing message the
  /// text contains; "origin" when none.
  std::string At(std::string_view path) const;
  /// "origin:line:column" where this message's field starts; "origin" for the top-level message.
  std::string Here() const;

 private:
  // Follows `path` as far as the text contains it; *complete tells whether it got to the end.
  TextLocation Walk(std::string_view path, bool* complete) const;

  std::string origin_;
  const google::protobuf::TextFormat::ParseInfoTree* tree_ = nullptr;
  const google::protobuf::Descriptor* type_ = nullptr;
  int line_ = -1;  // zero-based, as the parser records them; -1 when unknown
  int column_ = -1;
};

/// A parsed text file: the location tree of `message`'s fields (message is the caller's).
class ParsedText {
 public:
  /// Parses `text` into `message` (cleared first). The first syntax error, unknown field or enum
  /// value, or value of the wrong type or out of range becomes INVALID_ARGUMENT with the one-based
  /// line and column, the field, and for an unknown name the nearest valid one of the message or
  /// enum in scope:
  ///   "origin:3:3: unknown field 'nmae' in LayerParameter (nearest valid field: 'name')"
  ///   "origin:5:39: Expected integer, got: ten (in field 'num_output')"
  static StatusOr<std::unique_ptr<ParsedText>> Parse(std::string_view text, std::string_view origin,
                                                     google::protobuf::Message& message);

  /// The location handle of the top-level message.
  TextLocation root() const { return TextLocation(origin_, &tree_, type_); }

 private:
  ParsedText(std::string origin, const google::protobuf::Descriptor* type) : origin_(std::move(origin)), type_(type) {}

  std::string origin_;
  const google::protobuf::Descriptor* type_;
  google::protobuf::TextFormat::ParseInfoTree tree_;
};

}  // namespace sieve::runtime
