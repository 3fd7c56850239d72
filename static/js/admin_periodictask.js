// django-celery-beat's periodic task form in the admin: under Crontab, say in words what the chosen schedule
// means. The package ships this inline in its template, which the Content-Security-Policy refuses; this is the
// same behaviour as a static file (templates/admin/djcelery/change_periodictask_form.html loads it).
(function () {
  "use strict";
  var $ = window.django && window.django.jQuery;
  var data = document.getElementById("readable-crontabs");
  if (!$ || !data) return;
  var readable = JSON.parse(data.textContent);
  var help = $(".field-crontab .help");
  var original = help.text().trim();

  $(".field-crontab_translation").hide();
  $(".field-crontab").on("change", function () {
    var translation = readable[$("#id_crontab").val()];
    help.empty().append(document.createTextNode(original), $("<br>"),
      document.createTextNode("Translation: " + (translation || "")));
  });
})();
