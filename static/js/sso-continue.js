// The single sign-on callback's page: post its one form on at once (the POST signs in; a GET never writes).
// Without JavaScript the person presses its button.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("sso-continue");
  if (form) {
    form.submit();
  }
});
