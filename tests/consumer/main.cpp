#include <wechat/decrypt.hpp>

#include <iostream>

int main() {
  wechat::verify_options options;
  options.appid = "wx4f4bc4dec97d474b";
  std::error_code ec;
  const auto user = wechat::decrypt_user_info(
      "tiihtNczf5v6AKRyjwEUhQ==",
      {"CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+"
       "oNPdbB+"
       "3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/"
       "fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/"
       "1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//"
       "FRAUid1OksQaQx4CMs8LOddcQhULW4"
       "ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/"
       "8wR2SiRS7MNACwTyrGvt9ts8p12P"
       "KFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+"
       "T8yO5hzuyDb/"
       "XcxxmK01EpqOyuxINew==",
       "r7BXXKkLb8qrSNn05n0qiA=="},
      options, ec);
  if (ec) {
    std::cerr << "consumer: " << ec.message() << '\n';
    return 1;
  }
  std::cout << "consumer: decrypted " << user.openid << '\n';
  return 0;
}
