#include "edge/reflection_v1.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <algorithm>

namespace embed::edge {

namespace rv1 = grpc::reflection::v1;
using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;

namespace {

void not_found(rv1::ServerReflectionResponse& resp, const std::string& what) {
  auto* e = resp.mutable_error_response();
  e->set_error_code(static_cast<int32_t>(grpc::StatusCode::NOT_FOUND));
  e->set_error_message(what);
}

// `file` and, before it, every file it depends on that this stream has not sent yet.
void add_file(const FileDescriptor* file, std::vector<std::string>& sent,
              rv1::FileDescriptorResponse& out) {
  if (std::find(sent.begin(), sent.end(), file->name()) != sent.end())
    return;
  sent.push_back(file->name());
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  proto.SerializeToString(out.add_file_descriptor_proto());
  for (int i = 0; i < file->dependency_count(); ++i)
    add_file(file->dependency(i), sent, out);
}

class reactor final
    : public grpc::ServerBidiReactor<rv1::ServerReflectionRequest, rv1::ServerReflectionResponse> {
public:
  explicit reactor(const reflection_v1_service& svc) : svc_(svc) { StartRead(&req_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    resp_ = svc_.answer(req_, sent_);
    StartWrite(&resp_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish({grpc::StatusCode::CANCELLED, "the client went away"});
      return;
    }
    StartRead(&req_);
  }
  void OnDone() override { delete this; }

private:
  const reflection_v1_service& svc_;
  rv1::ServerReflectionRequest req_;
  rv1::ServerReflectionResponse resp_;
  std::vector<std::string> sent_;
};

} // namespace

reflection_v1_service::reflection_v1_service(std::vector<std::string> services)
    : services_(std::move(services)) {}

grpc::ServerBidiReactor<rv1::ServerReflectionRequest, rv1::ServerReflectionResponse>*
reflection_v1_service::ServerReflectionInfo(grpc::CallbackServerContext*) {
  return new reactor(*this);
}

rv1::ServerReflectionResponse reflection_v1_service::answer(const rv1::ServerReflectionRequest& req,
                                                            std::vector<std::string>& sent) const {
  const auto* pool = DescriptorPool::generated_pool();
  rv1::ServerReflectionResponse resp;
  resp.set_valid_host(req.host());
  *resp.mutable_original_request() = req;
  switch (req.message_request_case()) {
    case rv1::ServerReflectionRequest::kListServices:
      for (const auto& name : services_)
        resp.mutable_list_services_response()->add_service()->set_name(name);
      break;
    case rv1::ServerReflectionRequest::kFileByFilename: {
      const auto* file = pool->FindFileByName(req.file_by_filename());
      if (file == nullptr)
        not_found(resp, "file not found: " + req.file_by_filename());
      else
        add_file(file, sent, *resp.mutable_file_descriptor_response());
      break;
    }
    case rv1::ServerReflectionRequest::kFileContainingSymbol: {
      const auto* file = pool->FindFileContainingSymbol(req.file_containing_symbol());
      if (file == nullptr)
        not_found(resp, "symbol not found: " + req.file_containing_symbol());
      else
        add_file(file, sent, *resp.mutable_file_descriptor_response());
      break;
    }
    case rv1::ServerReflectionRequest::kFileContainingExtension: {
      const auto& ext = req.file_containing_extension();
      const auto* type = pool->FindMessageTypeByName(ext.containing_type());
      const FieldDescriptor* field =
          type == nullptr ? nullptr : pool->FindExtensionByNumber(type, ext.extension_number());
      if (field == nullptr)
        not_found(resp, "extension not found: " + ext.containing_type() + " " +
                            std::to_string(ext.extension_number()));
      else
        add_file(field->file(), sent, *resp.mutable_file_descriptor_response());
      break;
    }
    case rv1::ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const auto* type = pool->FindMessageTypeByName(req.all_extension_numbers_of_type());
      if (type == nullptr) {
        not_found(resp, "type not found: " + req.all_extension_numbers_of_type());
        break;
      }
      std::vector<const FieldDescriptor*> exts;
      pool->FindAllExtensions(type, &exts);
      auto* out = resp.mutable_all_extension_numbers_response();
      out->set_base_type_name(type->full_name());
      for (const auto* f : exts)
        out->add_extension_number(f->number());
      break;
    }
    case rv1::ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET: {
      auto* e = resp.mutable_error_response();
      e->set_error_code(static_cast<int32_t>(grpc::StatusCode::INVALID_ARGUMENT));
      e->set_error_message("the request names no question (message_request not set)");
      break;
    }
  }
  return resp;
}

} // namespace embed::edge
