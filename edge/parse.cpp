#include "edge/parse.hpp"

#include "messages/validate.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/unknown_field_set.h>
#include <grpc/support/log.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>
#include <spdlog/spdlog.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace embed::edge {

namespace {

namespace pb = google::protobuf;

thread_local bool parsing_request = false;

void protobuf_log(pb::LogLevel level, const char* file, int line, const std::string& message) {
  if (parsing_request) {
    spdlog::debug("libprotobuf, parsing a client's request: {}", message);
    return;
  }
  auto lvl = level == pb::LOGLEVEL_INFO      ? spdlog::level::info
             : level == pb::LOGLEVEL_WARNING ? spdlog::level::warn
             : level == pb::LOGLEVEL_ERROR   ? spdlog::level::err
                                             : spdlog::level::critical;
  spdlog::log(lvl, "libprotobuf {}:{}: {}", file, line, message);
}

void grpc_log(gpr_log_func_args* args) {
  auto lvl = args->severity == GPR_LOG_SEVERITY_DEBUG  ? spdlog::level::debug
             : args->severity == GPR_LOG_SEVERITY_INFO ? spdlog::level::info
                                                       : spdlog::level::err;
  spdlog::log(lvl, "grpc {}:{}: {}", args->file, args->line, args->message);
}

std::string flatten(const grpc::ByteBuffer& bytes) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!bytes.Dump(&slices).ok())
    return out;
  for (auto& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// The first string field (at any depth) that is not UTF-8, as "options.instruction: invalid
// UTF-8 at byte 3". The bytes are read as unknown fields, which skips proto3's UTF-8 check, and
// matched to the message's descriptor by field number.
std::optional<std::string> find_bad_utf8(const pb::Descriptor* type, const std::string& bytes,
                                         const std::string& prefix) {
  pb::UnknownFieldSet fields;
  if (!fields.ParseFromString(bytes))
    return std::nullopt;
  std::map<int, int> seen;
  for (int i = 0; i < fields.field_count(); ++i) {
    const auto& f = fields.field(i);
    const auto* fd = type->FindFieldByNumber(f.number());
    if (fd == nullptr || f.type() != pb::UnknownField::TYPE_LENGTH_DELIMITED)
      continue;
    int index = seen[f.number()]++;
    auto path = prefix + fd->name() + (fd->is_repeated() ? "[" + std::to_string(index) + "]" : "");
    if (fd->type() == pb::FieldDescriptor::TYPE_STRING) {
      if (auto bad = find_invalid_utf8(f.length_delimited()))
        return path + ": invalid UTF-8 at byte " + std::to_string(*bad) +
               " (a string field must be UTF-8: a text cut inside a character, or bytes sent as "
               "a string)";
    } else if (fd->type() == pb::FieldDescriptor::TYPE_MESSAGE) {
      if (auto inner = find_bad_utf8(fd->message_type(), f.length_delimited(), path + "."))
        return inner;
    }
  }
  return std::nullopt;
}

// The first enum field (at any depth) whose value the enum does not define, as
// "encoding: 7 is not a VectorEncoding (known: VECTOR_ENCODING_UNSPECIFIED = 0, ...)". proto3
// keeps such values as numbers; without this check they would be read as some default.
std::optional<std::string> find_unknown_enum(const pb::Message& msg, const std::string& prefix) {
  const auto* type = msg.GetDescriptor();
  const auto* refl = msg.GetReflection();
  for (int i = 0; i < type->field_count(); ++i) {
    const auto* f = type->field(i);
    auto path = [&](int index) {
      return prefix + f->name() + (index < 0 ? "" : "[" + std::to_string(index) + "]");
    };
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_ENUM) {
      const auto* e = f->enum_type();
      auto check = [&](int value, int index) -> std::optional<std::string> {
        if (e->FindValueByNumber(value) != nullptr)
          return std::nullopt;
        std::string known;
        for (int v = 0; v < e->value_count(); ++v)
          known += (v ? ", " : "") + e->value(v)->name() + " = " +
                   std::to_string(e->value(v)->number());
        return path(index) + ": " + std::to_string(value) + " is not a " + e->name() +
               " (known: " + known + ")";
      };
      if (!f->is_repeated()) {
        if (auto bad = check(refl->GetEnumValue(msg, f), -1))
          return bad;
      } else {
        for (int j = 0; j < refl->FieldSize(msg, f); ++j)
          if (auto bad = check(refl->GetRepeatedEnumValue(msg, f, j), j))
            return bad;
      }
    } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!f->is_repeated()) {
        if (refl->HasField(msg, f))
          if (auto bad = find_unknown_enum(refl->GetMessage(msg, f), path(-1) + "."))
            return bad;
      } else {
        for (int j = 0; j < refl->FieldSize(msg, f); ++j)
          if (auto bad = find_unknown_enum(refl->GetRepeatedMessage(msg, f, j), path(j) + "."))
            return bad;
      }
    }
  }
  return std::nullopt;
}

} // namespace

grpc::Status parse_request(grpc::ByteBuffer& bytes, pb::Message& out) {
  bool ok = false;
  {
    parsing_request = true;
    grpc::ProtoBufferReader reader(&bytes);
    ok = reader.status().ok() && out.ParseFromZeroCopyStream(&reader);
    parsing_request = false;
  }
  if (ok) {
    if (auto bad = find_unknown_enum(out, ""))
      return {grpc::StatusCode::INVALID_ARGUMENT, *bad};
    return grpc::Status::OK;
  }
  // Rare: find out what is wrong, to say it.
  auto flat = flatten(bytes);
  if (auto where = find_bad_utf8(out.GetDescriptor(), flat, ""))
    return {grpc::StatusCode::INVALID_ARGUMENT, *where};
  return {grpc::StatusCode::INVALID_ARGUMENT,
          "the request is not a valid " + out.GetDescriptor()->full_name() + " (" +
              std::to_string(flat.size()) + " bytes of malformed protobuf)"};
}

grpc::Status check_count(grpc::ByteBuffer& bytes, const count_limit& limit) {
  using wire = pb::internal::WireFormatLite;
  grpc::ProtoBufferReader reader(&bytes);
  if (!reader.status().ok())
    return grpc::Status::OK;
  pb::io::CodedInputStream in(&reader);
  uint64_t count = 0;
  while (uint32_t tag = in.ReadTag()) {
    if (wire::GetTagFieldNumber(tag) == limit.field_number &&
        wire::GetTagWireType(tag) == wire::WIRETYPE_LENGTH_DELIMITED)
      ++count;
    if (!wire::SkipField(&in, tag))
      return grpc::Status::OK; // malformed: the parse says so
  }
  if (count <= limit.limit)
    return grpc::Status::OK;
  return {grpc::StatusCode::INVALID_ARGUMENT, std::string(limit.name) + ": " +
                                                  std::to_string(count) + " " + limit.name +
                                                  ", limit " + std::to_string(limit.limit)};
}

grpc::Status serialize_response(const pb::Message& msg, grpc::ByteBuffer& bytes) {
  bytes.Clear(); // the writer needs an empty buffer (a stream reuses one)
  bool own = false;
  return grpc::GenericSerialize<grpc::ProtoBufferWriter, pb::Message>(msg, &bytes, &own);
}

void route_library_logs() {
  pb::SetLogHandler(protobuf_log);
  gpr_set_log_function(grpc_log);
}

} // namespace embed::edge
