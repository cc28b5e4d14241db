// Protobuf text parsing for the config loaders (proto_text.h): the error collector that turns the
// parser's first error into a message with the field and the nearest valid name, and the location
// handles over the parser's ParseInfoTree.
#include "runtime/config/proto_text.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "framework/suggest.h"

namespace sieve::runtime {

namespace fs = std::filesystem;
namespace gpb = google::protobuf;

StatusOr<std::string> ReadTextFile(const std::string& path, std::string_view what) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  SIEVE_ENSURE(fs::exists(status), StatusCode::kNotFound, what << " '" << path << "' does not exist");
  SIEVE_ENSURE(fs::is_regular_file(status), StatusCode::kInvalidArgument,
               what << " '" << path << "' is not a regular file");
  std::ifstream in(path, std::ios::binary);
  SIEVE_ENSURE(in.good(), StatusCode::kInvalidArgument, what << " '" << path << "' cannot be opened for reading");
  std::ostringstream text;
  text << in.rdbuf();
  SIEVE_ENSURE(!in.bad(), StatusCode::kInvalidArgument, what << " '" << path << "' could not be read");
  return text.str();
}

std::string ResolveAgainst(std::string_view origin, const std::string& path) {
  const fs::path p(path);
  const fs::path folder = fs::path(origin).parent_path();
  if (p.is_absolute() || folder.empty()) return path;
  return (folder / p).lexically_normal().string();
}

// ---------------------------------------------------------------------------------------------
// Locations

namespace {

std::string FormatLocation(std::string_view origin, int line, int column) {
  std::string text(origin);
  if (line < 0) return text;
  return text + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1);
}

// One part of a location path: "layer[3]" -> {"layer", 3}; "net" -> {"net", -1}.
struct PathPart {
  std::string_view field;
  int index = -1;
};

std::vector<PathPart> SplitPath(std::string_view path) {
  std::vector<PathPart> parts;
  while (!path.empty()) {
    const size_t dot = path.find('.');
    std::string_view part = path.substr(0, dot);
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
    PathPart p;
    const size_t bracket = part.find('[');
    if (bracket != std::string_view::npos) {
      p.index = std::stoi(std::string(part.substr(bracket + 1)));
      part = part.substr(0, bracket);
    }
    p.field = part;
    parts.push_back(p);
  }
  return parts;
}

// The field `part` names in `type`, and the index ParseInfoTree wants (-1 for a singular field).
std::pair<const gpb::FieldDescriptor*, int> Resolve(const gpb::Descriptor* type, const PathPart& part) {
  const gpb::FieldDescriptor* field = type->FindFieldByName(std::string(part.field));
  SIEVE_CHECK(field != nullptr, "location path names no field '" << part.field << "' of " << type->full_name());
  const int index = field->is_repeated() ? std::max(part.index, 0) : -1;
  return {field, index};
}

}  // namespace

TextLocation::TextLocation(std::string_view origin, const gpb::TextFormat::ParseInfoTree* tree,
                           const gpb::Descriptor* type)
    : origin_(origin), tree_(tree), type_(type) {}

TextLocation TextLocation::Walk(std::string_view path, bool* complete) const {
  TextLocation at = *this;
  *complete = true;
  for (const PathPart& part : SplitPath(path)) {
    const auto [field, index] = Resolve(at.type_, part);
    SIEVE_CHECK(field->message_type() != nullptr, "location path part '" << part.field << "' is not a message");
    const gpb::TextFormat::ParseInfoTree* nested = at.tree_->GetTreeForNested(field, index);
    if (nested == nullptr) {
      *complete = false;
      break;
    }
    const gpb::TextFormat::ParseLocation start = at.tree_->GetLocation(field, index);
    at.tree_ = nested;
    at.type_ = field->message_type();
    at.line_ = start.line;
    at.column_ = start.column;
  }
  return at;
}

TextLocation TextLocation::In(std::string_view path) const {
  bool complete = false;
  return Walk(path, &complete);
}

std::string TextLocation::At(std::string_view path) const {
  const size_t dot = path.rfind('.');
  bool complete = true;
  const TextLocation parent = dot == std::string_view::npos ? *this : Walk(path.substr(0, dot), &complete);
  if (!complete) return parent.Here();
  const auto [field, index] =
      Resolve(parent.type_, SplitPath(path.substr(dot == std::string_view::npos ? 0 : dot + 1)).front());
  const gpb::TextFormat::ParseLocation start = parent.tree_->GetLocation(field, index);
  return start.line >= 0 ? FormatLocation(origin_, start.line, start.column) : parent.Here();
}

std::string TextLocation::Here() const { return FormatLocation(origin_, line_, column_); }

// ---------------------------------------------------------------------------------------------
// Parsing

namespace {

// Keeps the parser's first error (it stops there anyway); warnings are ignored.
class FirstErrorCollector final : public gpb::io::ErrorCollector {
 public:
  void AddError(int line, gpb::io::ColumnNumber column, const std::string& message) override {
    if (has_error_) return;
    has_error_ = true;
    line_ = line;
    column_ = column;
    message_ = message;
  }

  bool has_error() const { return has_error_; }
  int line() const { return line_; }
  int column() const { return column_; }
  const std::string& message() const { return message_; }

 private:
  bool has_error_ = false;
  int line_ = 0;
  int column_ = 0;
  std::string message_;
};

// The byte offset of the parser's (line, column); the tokenizer advances the column of a tab to the
// next multiple of 8.
size_t OffsetOf(std::string_view text, int line, int column) {
  size_t offset = 0;
  for (int l = 0; l < line && offset < text.size(); ++offset) {
    if (text[offset] == '\n') ++l;
  }
  for (int c = 0; c < column && offset < text.size() && text[offset] != '\n'; ++offset) {
    c = text[offset] == '\t' ? c + 8 - c % 8 : c + 1;
  }
  return offset;
}

bool IsIdentifierStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentifierChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// The name of the last field that starts before `end` ("name:" or "name {"), skipping comments and
// strings; "" when there is none.
std::string FieldBefore(std::string_view text, size_t end) {
  std::string last;
  size_t i = 0;
  end = std::min(end, text.size());
  while (i < end) {
    const char c = text[i];
    if (c == '#') {
      while (i < end && text[i] != '\n') ++i;
    } else if (c == '"' || c == '\'') {
      for (++i; i < end && text[i] != c && text[i] != '\n'; ++i) {
        if (text[i] == '\\') ++i;
      }
      ++i;
    } else if (IsIdentifierStart(c)) {
      const size_t start = i;
      while (i < end && IsIdentifierChar(text[i])) ++i;
      size_t j = i;
      while (j < text.size() && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' || text[j] == '\n')) ++j;
      if (j < text.size() && (text[j] == ':' || text[j] == '{' || text[j] == '<'))
        last = std::string(text.substr(start, i - start));
    } else {
      ++i;
    }
  }
  return last;
}

// Every message type of sieve.proto's file (nested ones included), for enum and field lookups.
void CollectTypes(const gpb::Descriptor* type, std::vector<const gpb::Descriptor*>& out) {
  out.push_back(type);
  for (int i = 0; i < type->nested_type_count(); ++i) CollectTypes(type->nested_type(i), out);
}

std::vector<const gpb::Descriptor*> TypesOfFile(const gpb::FileDescriptor* file) {
  std::vector<const gpb::Descriptor*> types;
  for (int i = 0; i < file->message_type_count(); ++i) CollectTypes(file->message_type(i), types);
  return types;
}

std::string Join(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

// "unknown field 'nmae' in LayerParameter (nearest valid field: 'name')", and where a field of that
// name exists in other messages, the fields that hold those messages ("'num_output' is a field of
// fully_connected_param, lstm_param").
std::string DescribeUnknownField(const gpb::Descriptor* scope, const std::string& name) {
  std::vector<std::string> fields;
  for (int i = 0; i < scope->field_count(); ++i) fields.push_back(scope->field(i)->name());
  std::string text = "unknown field '" + name + "' in " + scope->name() + " (nearest valid field: '" +
                     NearestName(name, fields) + "')";
  std::vector<std::string> holders;
  const std::vector<const gpb::Descriptor*> types = TypesOfFile(scope->file());
  for (const gpb::Descriptor* type : types) {
    if (type == scope || type->FindFieldByName(name) == nullptr) continue;
    for (const gpb::Descriptor* holder : types) {
      for (int i = 0; i < holder->field_count(); ++i) {
        if (holder->field(i)->message_type() == type) holders.push_back(holder->field(i)->name());
      }
    }
  }
  if (!holders.empty()) text += "; '" + name + "' is a field of " + Join(holders);
  return text;
}

// "unknown value 'TRIAN' of field 'phase' (nearest valid value: 'TRAIN'; valid: TRAIN, TEST)". The
// parser does not say which message the field is in, so the values of every enum field of that name
// in the file are candidates.
std::string DescribeUnknownEnumValue(const gpb::FileDescriptor* file, const std::string& value,
                                     const std::string& field_name) {
  std::vector<std::string> values;
  std::set<const gpb::EnumDescriptor*> seen;
  for (const gpb::Descriptor* type : TypesOfFile(file)) {
    const gpb::FieldDescriptor* field = type->FindFieldByName(field_name);
    if (field == nullptr || field->enum_type() == nullptr || !seen.insert(field->enum_type()).second) continue;
    for (int i = 0; i < field->enum_type()->value_count(); ++i) values.push_back(field->enum_type()->value(i)->name());
  }
  std::string text = "unknown value '" + value + "' of field '" + field_name + "'";
  if (!values.empty())
    text += " (nearest valid value: '" + NearestName(value, values) + "'; valid: " + Join(values) + ")";
  return text;
}

// The (line, column) of byte `offset`, counted as the parser counts them.
std::pair<int, int> LineColumnOf(std::string_view text, size_t offset) {
  int line = 0;
  int column = 0;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 0;
    } else {
      column = text[i] == '\t' ? column + 8 - column % 8 : column + 1;
    }
  }
  return {line, column};
}

// The start of the last whole-word occurrence of `word` that starts at or before `offset`.
std::optional<size_t> WordBefore(std::string_view text, std::string_view word, size_t offset) {
  if (word.empty()) return std::nullopt;
  size_t at = std::min(offset, text.size());
  while ((at = text.rfind(word, at)) != std::string_view::npos) {
    const bool starts = at == 0 || !IsIdentifierChar(text[at - 1]);
    const bool ends = at + word.size() >= text.size() || !IsIdentifierChar(text[at + word.size()]);
    if (starts && ends) return at;
    if (at == 0) break;
    --at;
  }
  return std::nullopt;
}

// The parser's first error as Sieve reports it: where, and what, naming the field and the nearest
// valid name where it can.
struct ParseErrorReport {
  int line = 0;
  int column = 0;
  std::string message;
};

ParseErrorReport DescribeParseError(const FirstErrorCollector& error, std::string_view text,
                                    const gpb::Descriptor* type) {
  static const std::regex kUnknownField(R"re(Message type "([\w.]+)" has no field named "(\w+)"\.?)re");
  static const std::regex kUnknownEnum(R"re(Unknown enumeration value of "([^"]*)" for field "(\w+)"\.?)re");
  static const std::regex kRepeated(R"re(Non-repeated field "(\w+)" is specified multiple times\.?)re");
  ParseErrorReport report{error.line(), error.column(), error.message()};
  const size_t offset = OffsetOf(text, error.line(), error.column());
  std::string subject;  // the token the error is about, where the parser's position is past it
  std::smatch match;
  const gpb::Descriptor* scope = nullptr;
  if (std::regex_match(error.message(), match, kUnknownField) &&
      (scope = type->file()->pool()->FindMessageTypeByName(match[1].str())) != nullptr) {
    subject = match[2].str();
    report.message = DescribeUnknownField(scope, subject);
  } else if (std::regex_match(error.message(), match, kUnknownEnum)) {
    subject = match[1].str();
    report.message = DescribeUnknownEnumValue(type->file(), subject, match[2].str());
  } else {
    if (std::regex_match(error.message(), match, kRepeated)) subject = match[1].str();
    while (!report.message.empty() && report.message.back() == '.') report.message.pop_back();
    // At the end of the text the tokenizer's current token is empty: say so.
    if (offset >= text.size()) {
      static const std::regex kGotNothing(R"re((got|found)(: ?| "")$)re");
      report.message = std::regex_replace(report.message, kGotNothing, "$1 the end of the text");
    }
    // Where a field name was expected, the last field is the one before the mistake, not the one it is in.
    const std::string field = FieldBefore(text, offset);
    const bool between_fields = report.message.rfind("Expected identifier", 0) == 0;
    if (!field.empty()) report.message += (between_fields ? " (after field '" : " (in field '") + field + "')";
  }
  if (const std::optional<size_t> at = WordBefore(text, subject, offset)) {
    std::tie(report.line, report.column) = LineColumnOf(text, *at);
  }
  return report;
}

}  // namespace

StatusOr<std::unique_ptr<ParsedText>> ParsedText::Parse(std::string_view text, std::string_view origin,
                                                        gpb::Message& message) {
  std::unique_ptr<ParsedText> parsed(new ParsedText(std::string(origin), message.GetDescriptor()));
  FirstErrorCollector errors;
  gpb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&parsed->tree_);
  message.Clear();
  // ArrayInputStream takes an int size; a text of 2 GiB or more is refused before it could wrap.
  SIEVE_ENSURE(text.size() < static_cast<size_t>(std::numeric_limits<int>::max()), StatusCode::kInvalidArgument,
               origin << ": " << text.size() << " bytes is too large for a text file");
  gpb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  if (!parser.Parse(&input, &message)) {
    SIEVE_ENSURE(errors.has_error(), StatusCode::kInvalidArgument, origin << ": the text does not parse");
    const ParseErrorReport report = DescribeParseError(errors, text, message.GetDescriptor());
    return SIEVE_ERROR(StatusCode::kInvalidArgument, FormatLocation(origin, report.line, report.column)
                                                         << ": " << report.message);
  }
  return parsed;
}

}  // namespace sieve::runtime
